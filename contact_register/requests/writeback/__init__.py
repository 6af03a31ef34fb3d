"""Write-back to the systems for data-subject requests: erasure, marketing ban (and the
machinery rectification and restriction reuse). See :mod:`contact_register.requests.writeback.base`."""
