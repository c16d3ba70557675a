"""Everything about trade platforms: models, admin, the manager client, mirror, sandbox."""
