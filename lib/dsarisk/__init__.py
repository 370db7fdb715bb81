"""dsarisk: a reproducible DSA systemic risk assessment workbook.

Data flows one way: methodology and input files are loaded and validated
(:mod:`dsarisk.methodology`, :mod:`dsarisk.inputs`), scored by pure functions
(:mod:`dsarisk.scoring`), shown by notebooks (:mod:`dsarisk.plots`,
:mod:`dsarisk.tables`) and assembled into a report (:mod:`dsarisk.pipeline`).
"""

__version__ = "0.1.0"
