"""The defaults every entry point shares (the command line, `cmteb.run`, the model cores), in one place.

Kept free of heavy imports so that `cmteb --help` stays fast."""

DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_LENGTH = 512
CPU_BATCH_TOKENS = 1024  # padded tokens per forward pass on a CPU unless --batch-tokens says otherwise
# With a padded-token budget, a pass of short inputs holds up to this many times the batch size: the budget,
# not the count, bounds its memory, and a pass of few tokens leaves a GPU mostly idle.
FILL_ROWS = 16
DEFAULT_RERANK_TOP_K = 100
DEFAULT_PROTOCOL = "mteb-cmn-v1"
DEFAULT_OUTPUT_DIR = "results"
PIPELINE_CHOICES = ("auto", "on", "off")  # --pipeline: encode the next task ahead of evaluation
NOISE_DRAWS = 4  # perturbed evaluations per task that measure its float noise, by default with --subsample
DEFAULT_CUTOFF_LAYER = 28  # the layerwise reranker's scoring layer: bge-reranker-v2-minicpm-layerwise's card
