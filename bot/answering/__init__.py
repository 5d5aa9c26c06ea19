"""Answering: prompting, generation, grounding, composition."""
