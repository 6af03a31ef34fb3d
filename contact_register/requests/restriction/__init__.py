"""Restriction of processing (GDPR art. 18): the person marked restricted where a system has a
mark for it, flagged ``restricted`` in the warehouse (and so out of marketing and of the
analysts' ``analyst_persons``), lifted by the operator. The ``restriction`` job runs ``flow.py``."""
