"""The CrossGuard front end: the same rules as ``virtplane check``, as a pulumi_policy pack (``__main__.py``)."""
