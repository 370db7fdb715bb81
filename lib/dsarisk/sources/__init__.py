"""External data sources that feed probability proxies (see :mod:`dsarisk.sources.sor`)."""
