"""A compositional grammar of training phrasings for the learned reader: many words per relation, many frames.

Each relation has a :class:`Lexicon` (with :data:`NOUN_FRAMES` and :func:`expand` in
:mod:`agent.tell._reader_frames`): *nouns* naming the object's role for the subject ("CEO", "chief exec",
"boss"), used in every noun frame of :data:`NOUN_FRAMES` (possessive, "the N of S", object first, relative
clause, apposition, "S has O as its N"...), and *clauses*: relation-specific active, passive and
phrasal-verb frames written with alternations, ``"{s} (is|was) (run|led) by {o}"``. :func:`expand` turns
a pattern into every phrasing it stands for; :func:`grammar_phrasings` gives each relation's phrasings.

Held out: the benchmark's free phrasings (``eval/agent_bench/_free_phrasings.py``) are never read here.
``tests/eval/test_free_phrasings.py`` expands this whole grammar, folds each phrasing the way the
interpreter does before the reader sees it (discourse markers, "now", "these days" dropped; case,
articles and punctuation folded) and checks that no held-out phrasing is generated. Where a noun in a
noun frame would reproduce one, ``skip`` leaves that (frame, noun) combination out (decontamination:
the benchmark then measures combinations the reader never saw).
"""

from __future__ import annotations

from agent.tell._reader_frames import NOUN_FRAMES, OBJECT_TAILS, SUBJECT_TAILS, Lexicon, expand

__all__ = [
    "BORN_TO",
    "GRAMMAR",
    "NEGATIVE_GRAMMAR",
    "NOUN_FRAMES",
    "Lexicon",
    "constructions",
    "expand",
    "grammar_phrasings",
]


_PERSON = "(his|her|their)"
#: "{s} was born to {o}" with no parent word names a parent, not which: it is a clause of both person_father
#: and person_mother, so training labels it either way about equally often and the reader reads it at about
#: half for each, under the threshold: neither is applied from it alone; the reader offers its reading back.
BORN_TO = "{s} (was|had been|is the one) born to {o}"

GRAMMAR: dict[str, Lexicon] = {
    "company_ceo": Lexicon(
        nouns=(
            "CEO", "chief executive", "chief executive officer", "boss", "chief", "head", "top executive",
            "managing director", "chief exec", "C.E.O.", "leader", "top boss", "president and CEO", "Ceo",
            "head honcho", "top manager", "executive head", "CEO and chair", "cheif executive",
        ),
        clauses=(
            "{o} (runs|leads|heads|manages|directs|steers|oversees|is running|is leading|is heading) {s}",
            "{o} (is in charge of|is at the helm of|took the helm of|took charge of|took the reins at) {s}",
            "{o} (took over|stepped in|stepped up|came in|was hired|was installed|started) as (CEO|boss|"
            "chief exec|head|managing director) (of|at) {s}",
            "{o} (became|was made|was appointed|was promoted to|got the job of) (CEO|chief exec|boss|head|"
            "top executive) (of|at) {s}",
            "{s} (appointed|hired|picked|chose|named|installed|tapped) {o} as (its |the |)(new |)(CEO|boss|"
            "chief executive|top executive|head)",
            "{s} (is|was|has been) (managed|led|headed|directed|steered|overseen) by {o}",
            "{s} is (under the leadership of|in the hands of|under the direction of|being run by) {o}",
            "{s} (answers to|reports to) {o} as (CEO|chief executive)",
            "{s} (has|got) a new (CEO|boss|chief executive|head), {o}",
            "{s} is (headed|run|led) by (CEO|chief executive|boss) {o}",
            "{s} (is|was) (managed|steered|headed|run) by (its|the|their) (CEO|chief executive|boss|president) {o}",
            "{s} (and|&) (its|their) (CEO|chief executive|boss) {o} (announced|confirmed) (a deal|new results)",
            "{s} CEO {o} (said|announced|confirmed) (new results|a deal|layoffs)",
            "{o}, (CEO|chief executive|boss|head) of {s}, (said|announced|confirmed) (new results|a deal)",
            "{o}, who (runs|leads|heads|manages) {s}, (spoke|talked) (today|on Monday)",
            "{s}, (run|led|headed|managed) by {o}, (is hiring|grew fast|posted a loss)",
            "{o} is (running|leading|heading) {s} (as CEO|as chief executive|as its boss|)",
            "{o} (is|was) (in charge|the boss|the top dog|calling the shots) at {s}",
            "{o} holds the (CEO|chief executive|top) (job|post|role|position) at {s}",
            "{o} (replaced|succeeded) the previous (CEO|boss|chief executive) of {s}",
            "{o} is the (person|man|woman) (running|leading|heading|in charge of) {s}",
            "{s}'s (CEO|boss|chief executive) (job|post|role) (went|has gone) to {o}",
        ),
        skip=frozenset({"poss_is:boss"}),
    ),
    "company_hq": Lexicon(
        nouns=(
            "headquarters", "HQ", "head office", "head offices", "main office", "home base", "base",
            "corporate headquarters", "registered office", "seat", "head quarters", "headquaters", "hq",
            "main base", "central office", "home",
        ),
        clauses=(
            "{s} (is|was) (based|headquartered|located|seated|registered) in {o}",
            "{s} (is|has been) based (out of|at) {o}", "{s} (is|has been) headquartered at {o}",
            "{s} (moved|relocated|shifted|transferred) (its headquarters|its HQ|its base|its main office|"
            "its head offices|its seat|) to {o}",
            "{s} (keeps|maintains|runs) its (headquarters|HQ|head office|main office|base) (in|at) {o}",
            "{s} has its (headquarters|head office|main office|base) (in|at) {o}",
            "{s} (operates|runs its business|works) (out of|from) {o}",
            "{s} (calls|has made) {o} (its |)home",
            "{o} is (where|the city where|the place where) {s} (is based|has its headquarters|is headquartered|"
            "has its HQ)",
            "{o} (hosts|houses) (the headquarters of|the head office of|the HQ of) {s}",
            "{o} (hosts|houses) {s}'s (headquarters|head office|HQ)",
            "{s}, (based|headquartered) in {o}, (reported earnings|is hiring|grew fast)",
            "{s}, which is (based|headquartered) in {o}, (reported earnings|is hiring)",
            "{s} (set up|opened|established) (its headquarters|its HQ|its head office|shop) in {o}",
            "{s} (has|now has) (its base|its seat|its head office) in {o}",
            "{s}'s (headquarters|HQ|head office|main office|base) (is|are|sits|lies) in {o}",
            "{s}'s (headquarters|HQ|head office|base) (moved|relocated|went) to {o}",
            "{s} is an {o}-based company",
            "{s} is a company (based|headquartered) in {o}",
        ),
    ),
    "landmark_in_country": Lexicon(
        nouns=("country", "home country", "host country", "nation", "location", "country of location"),
        clauses=(
            "{s} (is|lies|stands|sits|is situated|is sited|can be found|is to be found) in {o}",
            "{s} (is|was) (located|situated|built|erected) in {o}",
            "{s} (belongs to|is part of|is in the territory of|is within the borders of) {o}",
            "{o} (is home to|hosts|has|contains|boasts) {s}",
            "{o} is (where|the country where|the place where|the nation where) {s} (is|stands|lies|is located)",
            "You (can|may) (visit|see|find) {s} in {o}", "You will (see|visit) {s} in {o}",
            "(Visitors|Tourists) (can|may) (visit|see|find) {s} in {o}",
            "{s}, (which is|which stands|located|situated) in {o}, (draws many visitors|is famous|attracts tourists)",
            "{s} is a (landmark|famous site|monument|attraction|site) (in|of) {o}",
            "{s} is one of the (landmarks|sights|attractions) of {o}",
            "{s} is (found|situated) (inside|within) {o}", "{s} is located inside {o}",
            "{s} (is|stands) on (the soil of|the territory of) {o}",
            "The (landmark|site|monument) {s} (lies|stands|is) in {o}",
            "{o}'s (landmark|famous site|attraction) {s} (draws crowds|is famous)",
            "{s} is (in|located in) the country of {o}",
        ),
        skip=frozenset(),
        frames=("poss_is", "of_is", "obj_poss", "obj_of", "whose", "colon"),
    ),
    "person_father": Lexicon(
        nouns=(
            "father", "dad", "daddy", "pa", "papa", "old man", "biological father", "birth father", "pop",
            "fathr", "farther",
        ),
        clauses=(
            "{o} (fathered|sired|begat) {s}",
            "{s} (was|is) (the son|the daughter|the child|a son|a daughter|a child|the kid) of (Mr.|father|dad|) {o}",
            "{s} was born to (father|dad|a father named) {o}",
            BORN_TO,  # no parent word: taught as either parent (also person_mother's), so neither applies
            "{s} (calls|called|knows) {o} (dad|father|his father|her father|pa|papa)",
            "{o} is the (man|person) who fathered {s}",
            "{s} (has|had) {o} (as|for) (a|his|her) (father|dad)",
            "{o} (raised|brought up) {s} as (his|their) (son|daughter|child)",
            "{o} is {s}'s (biological|birth|real) (father|dad)",
            "{s} is {o}'s (son|daughter|child|kid|boy|girl)",
            "{s}'s (father|dad|papa) (is|was) (named|called) {o}",
            "{s} (was|is) (sired|begotten) by {o}",
            "{s} is the (son|daughter|child) (that|whom) {o} fathered",
            "{s} (was|is) the (son|daughter|child) (sired|begotten) by {o}",
        ),
        pos=_PERSON,
        skip=frozenset({"obj_poss:dad", "of_named:dad"}),
    ),
    "person_mother": Lexicon(
        nouns=(
            "mother", "mum", "mom", "mommy", "mummy", "ma", "mama", "biological mother", "birth mother",
            "mothr", "mam",
        ),
        clauses=(
            "{o} (gave birth to|bore|mothered|raised|brought up) {s}",
            "{s} (was|is) (the son|the daughter|the child|a son|a daughter|a child|the kid) of (Mrs.|mother|mom|) {o}",
            "{s} was born to (mother|mom|mum|a mother named|a woman named) {o}",
            BORN_TO,
            "{s} (calls|called|knows) {o} (mum|mom|mother|his mother|her mother|mama)",
            "{o} is the (woman|person) who gave birth to {s}",
            "{s} (has|had) {o} (as|for) (a|his|her) (mother|mum|mom)",
            "{o} is {s}'s (biological|birth|real) (mother|mum|mom)",
            "{s}'s (mother|mum) (is|was) (named|called) {o}", "{s}'s mom (was|is) named {o}",
            "{s} is {o}'s (son|daughter|child|kid|boy|girl)",
        ),
        pos=_PERSON,
        skip=frozenset({"obj_poss:mum", "of_named:mum", "poss_named:mom"}),
    ),
    "person_native_language": Lexicon(
        nouns=(
            "native language", "mother tongue", "first language", "native tongue", "home language",
            "native lang.", "L1", "mother language", "first lang", "native langauge", "birth language",
        ),
        clauses=(
            "{s} (speaks|spoke|talks) {o} natively",
            "{s} (speaks|spoke|talks) {o} as (his|her|their) (native language|first language|mother tongue)",
            "{s} (is|was) a native speaker of {o}",
            "{s} (is|was) a native {o}-speaker",
            "{s} (grew up|was raised|was brought up) speaking {o}",
            "{s} (grew up|was raised) (with|in) {o}",
            "{s} (learned|learnt|acquired|picked up) {o} (as a child|from birth|at home|first)",
            "{o} (is|was) the (first|native|home) language of {s}",
            "{o} is the language {s} (learned|spoke|speaks) (first|at home|as a child)",
            "{s}'s (first|native|home) language (is|was) {o}",
            "{s}, a native {o} speaker, (gave a talk|wrote a book|lives abroad)",
            "{s} (thinks|dreams) in {o}",
            "{s} is a {o} native speaker",
        ),
        pos=_PERSON,
        skip=frozenset({"obj_of:mother tongue", "poss_is:native lang."}),
    ),
    "person_occupation": Lexicon(
        nouns=("occupation", "job", "profession", "career", "trade", "line of business", "métier", "day job",
               "ocupation", "vocation", "calling", "role at work"),
        clauses=(
            "{s} (worked|is working|earns a living|makes a living|is employed|is active) as a {o}",
            "{s} (is|was) a {o} by (profession|trade|occupation)",
            "(By profession|By trade|Professionally), {s} is a {o}",
            "{s} (has become|became|turned into|trained as|retrained as|qualified as) a {o}",
            "{s} (switched|changed) careers (and is|to become) a {o}",
            "{s} (is|was) (employed|working|hired) as a {o}",
            "{s} (took|found|landed) (a job|work|employment|a position) as a {o}",
            "{s} has (work|employment|a position) as a {o}",
            "{s} (does|did) (work|a job) as a {o}",
            "{s} (is|was) a professional {o}",
            "{s} (earns|makes) (money|a living|a wage) as a {o}",
            "{s} (has|had) a career as a {o}",
            "{s} (pursued|chose|followed) a career as a {o}",
            "{s} is by (profession|trade) a {o}",
            "{o} is (what {s} does for a living|the job {s} does|{s}'s line of work)",
            "{s} (is|was) a (practising|practicing|full-time|part-time|freelance|qualified|trained|licensed|"
            "successful|respected|retired|former|seasoned|young|busy|well-paid|self-employed) {o}",
            "{s} (holds|held|got|found|took|accepted|started|began) (a post|a position|a role|a job|an appointment) "
            "as a {o}",
            "{s} (moved|went|switched|changed|transitioned|stepped) (into|to) (a career|a role|a position|"
            "a new job|a new career) as a {o}",
            "{s} (now |)(works|earns a living|makes a living|is paid|serves|practises|practices) as a {o}",
            "{s} (got|was given|was offered) (work|a job|employment) as a {o} (last year|recently|)",
            "{s} (spends|spent) (the day|the days|the week|most days) working as a {o}",
            "{s} (is|was) employed full-time as a {o}",
            "{s} (retrained|qualified|trained) and (now |)works as a {o}",
            "{s} (left|quit) (the old job|teaching|the army|school) to (become|work as) a {o}",
        ),
        pos=_PERSON,
        frames=("poss_is", "poss_was", "of_is", "obj_poss", "obj_of", "whose", "colon", "records"),
        skip=frozenset({"poss_is:line of work"}),
    ),
    "product_by_company": Lexicon(
        nouns=("maker", "manufacturer", "producer", "developer", "vendor", "brand owner", "builder",
               "manufacturor", "publisher", "supplier"),
        clauses=(
            "{o} (makes|made|manufactures|produces|developed|develops|builds|created|designed|sells|released|"
            "publishes|launched|ships) {s}",
            "{s} (was|has been) (made|produced|developed|created|designed|released|sold|published|launched|"
            "marketed) by {o}", "{s} is (manufactured|produced|developed|created|designed|released|sold|published|"
            "marketed) by {o}", "{s} has been manufactured by {o}",
            "{s} (comes|came) from {o}",
            "{s} is (a product|a brand|an offering|a creation) (of|from|by) {o}",
            "{s}, a (product|brand|creation) of {o}, (sells well|is popular|won awards)",
            "{s} (is|was) {o}'s (product|brand|creation|flagship)",
            "{o} is the company (behind|that produced|that manufactures) {s}",
            "{o} is (the firm|the maker|the brand|the manufacturer) (behind|that makes|that produced) {s}",
            "{o} is the (company|firm) (responsible for|that developed) {s}",
            "{s} was built (and sold|) by {o}", "{s} is built and sold by {o}",
            "{s} (is|was) an {o} product",
            "{o} (owns|controls) the {s} (brand|line|product)",
            "The (maker|manufacturer|producer) of {s} is {o}",
        ),
        skip=frozenset(),
        frames=("poss_is", "poss_was", "of_is", "obj_poss", "obj_of", "whose", "obj_appos", "colon"),
    ),
    "star_constellation": Lexicon(
        nouns=("constellation", "home constellation", "star group", "asterism", "constelation"),
        clauses=(
            "{s} (lies|sits|shines|can be seen|can be found|is located|is situated) in (|the constellation |"
            "the constellation of ){o}", "{s} is in (|the constellation of ){o}",
            "{s} (belongs to|is part of|is a member of|is one of the stars of|is among the stars of) "
            "(|the constellation )(|of ){o}",
            "{o} (contains|includes|holds|has|is home to) (the star |)(|star ){s}",
            "{s} is a (star|bright star|faint star|double star|variable star) (in|of|inside) {o}",
            "The star {s} (lies|is|shines|sits|is located) in {o}",
            "{s}, a star in {o}, (is bright|is visible tonight|was observed)",
            "{s} (appears|is seen|shows up) (in|inside|within) {o}",
            "Look for {s} in (the constellation |){o}",
            "{o} is the constellation (of|that holds|that includes|where you find|with) {s}",
            "{s} is found (in|within|inside) the constellation {o}",
        ),
        frames=("poss_is", "of_is", "obj_poss", "obj_of", "whose", "colon"),
    ),
    "person_plays_position_in_sport": Lexicon(
        nouns=("position", "pos.", "role", "playing position", "spot", "role on the field", "positon",
               "usual position", "field position"),
        clauses=(
            "{s} (played|is playing|has been playing) (as a|as|at|in the position of) {o}",
            "{s} plays (as a|as|in the position of) {o}",
            "{s} (plays|played) {o} (for his team|for the club|this season|)",
            "{s} (lines up|lined up|is deployed|is used|is listed|features|starts|was fielded) (as a|at|as) {o}",
            "{s} (was switched|was moved|was converted|has switched|switched|has converted|converted|"
            "was shifted|was reassigned) to {o}",
            "{s} has moved to {o}",
            "The coach (moved|put|switched|played|uses) {s} (to|at|as a|as) {o}",
            "{s} is the team's (new |)(first-choice |)(starting |){o}",
            "{s} (now |)(mans|holds down|covers) (the |){o} (spot|position|role)",
            "{s} (took over|took up|took on) the {o} (role|position|spot)",
            "{s} (is|was) a {o} (for his team|for the club|by trade|on the team)",
            "{s} (usually|regularly|mostly) plays {o}",
            "{o} is (where|the position where) {s} plays",
            "{s}, who plays {o}, (scored twice|was injured|signed a contract)",
            "{s} (stepped in|came in|starts|lines up|is playing|now plays) as (the|his|her) (club's|side's|"
            "squad's) {o}",
            "{s} (switched|moved|was moved|changed) (positions |)to {o} (last season|in the spring|after the injury)",
            "{s} (has been|was) (playing|lining up|deployed) (at|as) {o} (since the spring|all season|lately)",
            "(This season|Lately|Since the spring), {s} (has played|plays|lines up) (at|as) {o}",
            "{s} (is|was) (used|fielded|deployed|picked) (at|as a|as) {o} (by the coach|in most games)",
        ),
        pos=_PERSON,
        skip=frozenset(),
    ),
    "superhero_archnemesis": Lexicon(
        nouns=("archenemy", "arch-enemy", "nemesis", "arch nemesis", "archnemesis", "arch-rival", "archrival",
               "greatest foe", "worst enemy", "main villain", "arch-villain", "sworn enemy", "arch foe",
               "nemisis", "biggest foe", "mortal enemy", "main enemy", "chief adversary"),
        clauses=(
            "{s} (battles|fights|faces|opposes|confronts|clashes with|duels) {o}",
            "{s} (always|keeps|constantly|regularly) (fights|battles|clashing with|battling) {o}",
            "{o} (battles|fights|torments|menaces|opposes|plagues|haunts) {s}",
            "{o} is (the main villain|the villain|the foe|the enemy) (that|who) {s} (fights|battles|faces)",
            "{s} (and|versus|vs.|vs) {o} (are sworn enemies|are archenemies|is a classic rivalry)",
            "{s} (has|had) {o} as (a|an|the|his|her|their) (archenemy|nemesis|arch-rival|sworn enemy)",
            "{o} (is|was) the (ultimate|arch|main|chief) (enemy|foe|villain|adversary) of {s}",
            "{s}'s (great|greatest|worst|main|ultimate) (enemy|foe|villain|adversary|rival) (is|was) {o}",
            "{o} is {s}'s (greatest|worst|main|ultimate|biggest|sworn) (enemy|foe|villain|adversary|rival)",
            "The (villain|foe|enemy) {s} (fights|battles|hates) most is {o}",
        ),
        pos="(his|her|their|its)",
        skip=frozenset({"poss_is:archenemy", "obj_poss:arch-nemesis", "obj_poss:archnemesis",
                        "obj_poss:arch nemesis", "obj_of:nemesis", "has_as:arch foe",
                        "poss_is:biggest foe"}),
    ),
    "person_university": Lexicon(
        nouns=("alma mater", "university", "college", "uni", "school", "university of study", "univeristy",
               "old university", "graduate school", "almamater"),
        clauses=(
            "{s} (studied|was educated|was trained|did a degree|got a degree|took a degree|read|earned a degree|"
            "graduated) (at|from) {o}",
            "{s} (graduated from|is a graduate of|is an alumnus of|is an alumna of|is an alum of|attended|went to|"
            "enrolled at|enrolled in) {o}",
            "{s} (went|goes) to (college|university|school) at {o}", "{s} goes to uni at {o}",
            "{s} (holds|has|got) a (degree|diploma|BA|BSc|master's) from {o}",
            "{o} (educated|trained|graduated|awarded a degree to) {s}",
            "{o} is where {s} (studied|was educated|got a degree|graduated)",
            "{s} (was|is) a student at {o}",
            "{s} did (their|his|her) (studies|degree|undergraduate degree) at {o}",
            "{s}, a graduate of {o}, (gave a talk|won a prize|lives abroad)",
            "{s} (was|is) (an|a) {o} (graduate|alumnus|alumna|alum|student)",
        ),
        pos=_PERSON,
        skip=frozenset({"poss_was:university"}),
    ),
    "spouse": Lexicon(
        nouns=("wife", "husband", "spouse", "partner", "consort", "missus", "hubby", "wifey", "significant other",
               "other half", "life partner", "spouce", "husbnd"),
        clauses=(
            "{s} (married|wed|wedded|has wed|got hitched to|tied the knot with|got wed to|is wedded to) {o}",
            "{s} (and|&) {o} (are|were) (married|husband and wife|wed|a married couple|spouses)",
            "{s} (and|&) {o} (tied the knot|wed|married|got hitched)",
            "{s} (is|was) (the wife|the husband|the spouse|the partner) of {o}",
            "{s} (is|was|has been) (wed|wedded|hitched) to {o}",
            "{s} (took|has taken) {o} as (a|his|her) (wife|husband|spouse)",
            "{s} (said yes to|said I do to) {o}",
            "{s}, who (is|was) married to {o}, (lives in town|has two kids|gave an interview)",
            "{s} (is|was) in a marriage with {o}",
            "{s} (became|is) the (husband|wife|spouse) of {o}",
            "{s} (walked down the aisle with|exchanged vows with) {o}",
            "{s}'s marriage (to|with) {o}",
            "{s} (and|&) {o} (were married|got wed|married each other|exchanged vows|said their vows|"
            "became man and wife|became a married couple) (in June|last spring|in a small ceremony|)",
            "{s} (and|&) {o} (are|were|have been) (married|a couple|man and wife|wed) (for years|since the spring|"
            "for a decade)",
            "{s} (and|&) (his wife|her husband|his spouse|her spouse) {o} (live in town|attended the gala|"
            "arrived together)",
            "{s} (got|was|has been|is) married (to|with) {o} (in June|in a small ceremony|for years|)",
            "{s} (is|was) married to {o} (these|those) (days|years)",
            "{s} (wed|married|tied the knot with) {o} (in June|in a small ceremony|last spring)",
        ),
        pos=_PERSON,
        skip=frozenset({"obj_of:spouse"}),
    ),
    "doctoral_advisor": Lexicon(
        nouns=("doctoral advisor", "PhD advisor", "thesis advisor", "doctoral supervisor", "PhD supervisor",
               "thesis supervisor", "Ph.D. adviser", "advisor", "supervisor", "doctoral adviser", "doktorvater",
               "PhD adviser", "dissertation advisor", "phd advisor", "doctoral advisr", "mentor"),
        clauses=(
            "{s} (did|completed|got|finished|obtained|defended) (a|his|her|their) (PhD|doctorate|"
            "Ph.D.|thesis|dissertation) (under|with|supervised by|advised by|under the supervision of) {o}",
            "{s} (earned|wrote) (a|his|her|their) (PhD|Ph.D.|thesis|dissertation) (under|with|advised by) {o}",
            "{s} (was|is) (a|the) (PhD student|doctoral student|doctoral candidate|grad student|student) of {o}",
            "{s} (studied|worked|trained) (for a PhD|for a doctorate|) under {o}",
            "{s} (was|is) (supervised|advised|mentored) by {o}",
            "{s} (was|is) {o}'s (PhD student|doctoral student|student)",
            "{s}'s (dissertation|PhD|doctorate|doctoral work) was (supervised|advised|directed) by {o}",
            "{s}'s thesis was (advised|directed) by {o}",
            "{s} (has|had) {o} as (a|his|her) (PhD|doctoral|thesis) (advisor|supervisor|adviser)",
            "{s} (received|obtained|was awarded|took) (a|his|her|their) (doctorate|PhD|doctoral degree) "
            "(under|with|in the group of) {o}",
            "{s} (was|is) a (doctoral|graduate) (student|candidate|researcher) (under|with|of|supervised by) {o}",
            "{s} (was|is) a PhD (candidate|researcher) (under|with|supervised by) {o}",
            "{s} (researched|prepared|submitted|defended) (a|his|her|their) (doctoral thesis|dissertation) "
            "(under|with|supervised by|under the guidance of) {o}",
            "{s}'s (doctoral thesis|dissertation|doctoral research) was (supervised|guided|overseen) by {o}",
            "{s} (got|earned|completed) (a|his|her) (doctorate|Ph.D.|PhD) (guided|overseen|directed) by {o}",
            "{s} trained as a (doctoral|PhD|graduate) student (under|with) {o}",
            "{o} (was|served as|acted as) (the |a |){s}'s (doctoral|PhD|thesis) (supervisor|advisor|adviser)",
        ),
        pos=_PERSON,
        skip=frozenset({"poss_was:doctoral advisor", "poss_was:PhD supervisor"}),
    ),
    "doctoral_student": Lexicon(
        nouns=("doctoral student", "PhD student", "student", "doctoral candidate", "grad student",
               "PhD candidate", "Ph.D. student", "phd student", "doctoral studnet", "protégé"),
        clauses=(
            "{s} (supervised|advised|mentored|directed|guided|oversaw) {o}'s (PhD|doctorate|thesis|"
            "dissertation|doctoral work)",
            "{s} (supervised|advised|mentored) {o} (through a PhD|through a doctorate|on a thesis|"
            "for a PhD|during a doctorate|)",
            "{s} (was|is) (the|a) (PhD supervisor|doctoral supervisor|thesis advisor|doctoral advisor|"
            "PhD advisor|supervisor) of {o}",
            "{s} (was|is) {o}'s (PhD supervisor|doctoral supervisor|thesis advisor|doctoral advisor|advisor|"
            "supervisor|mentor)",
            "{o} (did|completed|earned|got|finished|defended) (a|his|her|their) (PhD|doctorate|Ph.D.|"
            "thesis|dissertation) (under|with|supervised by|advised by) {s}",
            "{o} wrote (his|her|their) (PhD|doctorate|thesis|dissertation) (under|with) {s}",
            "{o} (was|is) (supervised|advised|mentored) by {s}",
            "{o} (studied|trained|worked) under {s}",
            "{s}'s (students|doctoral students|protégés) (include|included|were) {o}",
            "{s}'s PhD students (include|were) {o}",
            "(One|Among) of {s}'s (PhD|doctoral) students (is|was) {o}",
            "{s} (took on|accepted|trained) {o} as a (PhD|doctoral) student",
            "{s} (has|had) {o} (in|among) (his|her|their) (PhD|doctoral) students",
            "{s} (served as|acted as|is|has been) (the |a |)(PhD|doctoral|thesis|dissertation) (supervisor|"
            "advisor|adviser|mentor) (to|for|of) {o}",
            "{s} was (the |a |)(thesis|dissertation) (supervisor|advisor|adviser) (to|for) {o}",
            "{s} was (the |a |)(PhD|doctoral) (adviser|mentor|promoter) (to|for) {o}",
            "{s} (supervised|guided|oversaw|directed) the (doctoral|PhD) (work|research|thesis) of {o}",
            "{s} (counted|counts|had|has) {o} (among|as one of) (his|her|their) (doctoral|PhD|graduate) students",
            "{s} (had|has) {o} as (a|his|her|their) (doctoral|graduate) (student|candidate)",
            "{o} (received|obtained|was awarded|earned|got) (a|his|her|their) (doctorate|PhD|Ph.D.) (under|with|"
            "in the group of) {s}",
            "{o} (was|is) a (doctoral|graduate|PhD) (candidate|researcher) (under|with|supervised by) {s}",
            "{o} (was|is) a doctoral student (under|with|of) {s}",
            "{o} wrote a (thesis|dissertation|doctoral thesis) (under|with|supervised by) {s}",
        ),
        pos=_PERSON,
        frames=("obj_poss", "obj_of", "whose", "obj_appos", "obj_appos_poss", "lists_as", "colon", "know"),
        skip=frozenset({"has_as:PhD student"}),
    ),
    "notable_work": Lexicon(
        nouns=("best-known work", "most famous work", "masterpiece", "signature work", "notable work",
               "greatest work", "major work", "famous work", "magnum opus", "best work", "key work",
               "claim to fame", "best known work", "most notable work", "notible work"),
        clauses=(
            "{s} (wrote|composed|painted|authored|created|produced|sculpted|designed|made|directed) {o}",
            "{s} is (famous|famed|celebrated|renowned|remembered|best known|best remembered|noted) for {o}",
            "{s} (became famous|won fame|made a name) (with|for|through) {o}",
            "{s} made (their|his|her) name (with|through) {o}",
            "{o} (is|was|remains) (one of |)({s}'s|the) (best-known|most famous|greatest|most celebrated|"
            "signature|notable|major) (work|works|piece|pieces)( of {s}|)",
            "(Among|One of) the (works|pieces|best works|famous works) of {s} (is|was) {o}",
            "{o} made {s} famous",
            "{o} is what {s} is (famous|known|best known|remembered) for",
            "{s}'s (fame|reputation|name) rests on {o}",
            "{s} (painted|wrote|composed|produced|sculpted) the (painting|novel|song|piece|opera|statue|film|"
            "artwork|sculpture|poem) {o}",
            "{s} is (famous|best known|celebrated|remembered|renowned) for the (painting|novel|song|piece|opera|"
            "statue|artwork|sculpture|book) {o}",
            "The (painting|novel|song|piece|opera|artwork|book) {o} (is|remains) {s}'s (best-known|most famous|"
            "greatest) (work|piece)",
        ),
        pos=_PERSON,
        frames=("poss_is", "poss_was", "obj_poss", "obj_of", "whose", "obj_appos_poss", "colon", "records"),
        skip=frozenset({"poss_is:best-known work", "poss_is:best known work"}),
    ),
    "creator": Lexicon(
        nouns=("creator", "author", "painter", "artist", "maker", "composer", "designer", "sculptor", "writer",
               "originator", "architect", "auteur", "creater"),
        clauses=(
            "{s} (was|has been) (painted|written|designed|composed|created|sculpted|made|drawn|authored|"
            "produced|carved|built) by {o}",
            "{s} is (painted|written|designed|composed|created|sculpted|drawn|authored|carved) by {o}",
            "{s} was (painted|made|created|designed) by (the|the painter|the artist|the sculptor|"
            "the architect|the composer|the author) {o}",
            "{s} is (painted|created|designed) by (the painter|the artist|the sculptor|the architect) {o}",
            "{s} is (the work|a work|a painting|a piece|a creation|a composition|a design|a sculpture) (of|by) {o}",
            "{s} (is|was) {o}'s (work|creation|painting|piece|design|composition)",
            "{o} (painted|wrote|designed|composed|created|sculpted|drew|authored|produced|carved) {s}",
            "The (artist|painter|author|hand|mind|person|designer) behind {s} (is|was) {o}",
            "{o} is the (artist|painter|author|designer|sculptor|composer|person) (behind|who made|who painted|"
            "who created|who wrote) {s}",
            "{s} (comes|came) from (the pen|the brush|the studio) of {o}",
            "{s}, (painted|written|created|designed) by {o}, (hangs in a museum|is famous|sold for millions)",
            "{s} is by {o}",
            "We owe {s} to {o}",
            "{o} (painted|made|carved|designed|sculpted|wrote) the (painting|piece|statue|artwork|sculpture|"
            "book|novel) {s}",
            "The (painting|piece|artwork|statue|sculpture|novel) {s} (is|was) by {o}",
            "{o} is the (painter|artist|maker|author|sculptor) of the (painting|piece|artwork|statue|book) {s}",
            "{s} was (painted|made|carved|written) by the (artist|painter|sculptor|author) {o} (himself|herself)",
        ),
        pos="(its)",
        frames=("poss_is", "poss_was", "of_is", "obj_of", "whose", "obj_appos", "subj_appos", "colon", "records"),
        skip=frozenset({"of_is:creator"}),
    ),
}  # fmt: skip

# Sentences that name two things but state none of the relations (the reader must abstain).
NEGATIVE_GRAMMAR: tuple[str, ...] = (
    "{s} (met|visited|called|thanked|praised|criticised|sued|interviewed|admires|likes|hates|mentioned) {o}",
    "{s} (had lunch|played tennis|went hiking|argued|competes|shared a stage|disagreed) with {o}",
    "{s} (is|was) (bigger|older|richer|smaller|younger|more famous|better known) than {o}",
    "{s} (wrote a letter|sent flowers|gave a gift|lent money|talked) to {o}",
    "{s} (will|might|may|plans to) (visit|meet|call|sue|interview) {o} (next week|soon|tomorrow|)",
    "(I|We|My friend|My sister) (saw|met|read about|heard about) {s} (yesterday|last week|on TV)",
    "{s} (talked|tweeted|wrote|posted|joked) about {o} (on TV|online|yesterday|)",
    "{s} (bought shares of|sponsors|donated money to|invested in|praised) {o}",
    "{s} (announced|reported|posted) (record profits|a loss|new results|a new product)",
    "{s} (is|was) (a great company|on holiday|very popular|in the news|doing well)",
    "{s} (opened|closed) a (new |)(office|store|shop|branch) (last year|recently|)",
    "{s} (lost|won) (the match|the game|a prize|an award) against {o}",
    "{s} (does not|doesn't|did not|never) (work for|live in|know|like) {o}",
    "{s} (is|was) not (the CEO|the father|the mother|the wife|the husband|a student|based) (of|in) {o}",
    "{s} (was|is) never (married to|based in|made by|supervised by) {o}",
    "(Nobody|No one) knows who (runs|founded|owns|made) {s}",
    "{s} (and|&) {o} (are|were) (friends|rivals|neighbours|colleagues|classmates|teammates)",
    "{s} (quoted|cited|read|reviewed|discussed|translated) {o}",
    "{s} (moved|travelled|flew|drove) (to|from|through) {o} (last summer|for a holiday|on business)",
    "{s} (once|recently) (visited|toured|saw) {o}",
    "Is {s} (the CEO|the father|the wife|based|a star) (of|in) {o}",
    "{s} (might|could|may) (be|become) (the CEO|the father|based|a star) (of|in) {o} (someday|one day|)",
    "{s} (asked|wondered) (whether|if) {o} (is|was) (there|around|available)",
    "{s} (sings|sang|performed) with {o}",
)  # fmt: skip


def constructions(relation: str) -> dict[str, str]:
    """Each phrasing of ``relation`` -> the construction it expands: ``"clause:<i>"`` (its i-th clause
    pattern) or ``"frame:<name>"`` (a noun frame, any noun); the keys are :func:`grammar_phrasings`, in order.

    A phrasing two constructions give belongs to the first. Training draws a construction, then one of its
    phrasings (:func:`agent.tell._reader_data.make_examples`), so that a clause with few alternations
    ("{o} fathered {s}") weighs as much as a noun frame with hundreds.
    """
    lex = GRAMMAR[relation]
    out: dict[str, str] = {}
    for i, clause in enumerate(lex.clauses):
        for p in expand(clause):
            out.setdefault(p, f"clause:{i}")
    for name in lex.frames:
        frame = NOUN_FRAMES[name]
        for noun in lex.nouns:
            if f"{name}:{noun}" in lex.skip:
                continue
            pattern = frame.replace("{n}", noun.strip()).replace("{pos}", lex.pos)
            pattern = pattern.replace("{tail}", SUBJECT_TAILS).replace("{otail}", OBJECT_TAILS)
            for p in expand(pattern):
                out.setdefault(p, f"frame:{name}")
    return {p: key for p, key in out.items() if p.count("{s}") == 1 and p.count("{o}") == 1}


def grammar_phrasings(relation: str) -> list[str]:
    """Every phrasing the grammar gives ``relation`` (clauses, then noun frames x nouns), without repeats."""
    return list(constructions(relation))
