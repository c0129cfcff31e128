"""kopf handlers: parse, call one reconcile function, return. Nothing else."""
