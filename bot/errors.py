"""Errors whose message is meant for the person running personabot, never a traceback."""


class PersonabotError(Exception):
    """A problem the user can fix; the CLI prints its message and exits non-zero."""


class ConfigurationError(PersonabotError):
    """A setting is missing or malformed."""


class KnowledgeError(PersonabotError):
    """The essay or its metadata cannot be read."""


class ModelLoadError(PersonabotError):
    """The model file is missing, unreadable or not a usable GGUF file."""


class GenerationError(PersonabotError):
    """The generator failed while producing a reply."""


class GeneratorUnavailableError(GenerationError):
    """The inference server cannot answer now (down, overloaded, circuit open): answer in voice."""
