"""The warm lane: small jobs on Spark sessions kept open (see :mod:`.pool`)."""
