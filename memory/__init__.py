"""Working memory: the sentence embedder (vector store and SQLite source of truth arrive with issue 3)."""

from memory.embedder import Embedder, SentenceTransformerEmbedder, default_model_dir

__all__ = ["Embedder", "SentenceTransformerEmbedder", "default_model_dir"]
