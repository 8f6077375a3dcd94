"""Figures of a summary, as PNG for the HTML report: bars by path, trends, the host's drift."""
