"""Jindou's domain: aggregates, events and the rules of money. Standard library + eventsourcing only."""
