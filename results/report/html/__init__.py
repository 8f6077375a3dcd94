"""The HTML report: one self-contained page, its sections, tables and embedded figures."""
