"""Read models: rebuildable from event 1, written exactly once per event (tracking row in the
same transaction as the rows it accounts for)."""
