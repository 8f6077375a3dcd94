"""The ways of loading: the four built-in paths, your own ``module:function`` and the shipped fast loaders."""
