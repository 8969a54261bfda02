"""mergeir: does merging a retrieval model with a domain LLM beat fine-tuning it?"""

__version__ = "0.1.0"
