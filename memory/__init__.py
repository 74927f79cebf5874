"""Working memory: the sentence embedder, the SQLite source of truth and the FAISS vector memory.

``VectorMemory`` stores versioned, scoped texts in SQLite (``Database``, WAL mode, shared with the
knowledge graph) and searches them through a FAISS index (``FaissIndex`` behind the ``VectorIndex``
seam, configured by ``IndexConfig``) or a Milvus collection (``MilvusIndex``, ``MilvusConfig``), and by
words through a BM25 index over jieba segmentation (``VectorMemory.search_lexical``;
``reciprocal_rank_fusion`` merges the two rankings). faiss, pymilvus, torch, jieba and bm25s are imported
only when first used.
"""

from memory._config import IndexConfig
from memory._fusion import reciprocal_rank_fusion
from memory._index import FaissIndex, VectorIndex
from memory._lexical import segment
from memory._listing import ItemPage, list_items
from memory._memo_embedder import EmbedderCounts, MemoEmbedder
from memory._milvus_index import MilvusConfig, MilvusIndex
from memory._pooled_encoder import EncoderLoader
from memory._records import MemoryHit, MemoryItem, MetadataValue
from memory._vector_memory import VectorMemory
from memory.embedder import Embedder, SentenceTransformerEmbedder, default_model_dir
from tools.base import Database, Scope, Triple, unsafe_character

__all__ = [
    "Database",
    "Embedder",
    "EmbedderCounts",
    "EncoderLoader",
    "FaissIndex",
    "IndexConfig",
    "ItemPage",
    "MemoEmbedder",
    "MemoryHit",
    "MemoryItem",
    "MetadataValue",
    "MilvusConfig",
    "MilvusIndex",
    "Scope",
    "SentenceTransformerEmbedder",
    "Triple",
    "VectorIndex",
    "VectorMemory",
    "default_model_dir",
    "list_items",
    "reciprocal_rank_fusion",
    "segment",
    "unsafe_character",
]
