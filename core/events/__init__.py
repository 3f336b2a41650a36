"""Events from flytepropeller (§6): pure transitions per entity and the service applying them."""
