"""tokstudy: reproduce and extend Dagan, Synnaeve & Rozière (ICML 2024) on tokenizers for code LLMs."""

from tokstudy import threads as _threads

__version__ = "0.1.0"

_threads.apply()  # before anything imports torch: see tokstudy.threads
