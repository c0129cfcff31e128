"""One reconcile function per kind: load, observe, decide, act, summarize, write status."""
