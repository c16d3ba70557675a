"""Staff pages, one module per screen family."""
