"""Ways in to the dialogue core: each module translates one platform to and from the core's types."""
