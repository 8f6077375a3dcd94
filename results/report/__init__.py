"""Reports: what they say, as markdown, HTML with plots, or data for other tools."""
