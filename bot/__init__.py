"""personabot's dialogue core: platform-free, so every adapter shares one behaviour."""
