"""Source plugins: the lifecycle contract and registry (`registry`), one folder per source type."""
