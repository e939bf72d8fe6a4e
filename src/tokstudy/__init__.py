"""tokstudy: reproduce and extend Dagan, Synnaeve & Rozière (ICML 2024) on tokenizers for code LLMs."""

__version__ = "0.1.0"
