"""Marketing ban per system: one banner module per system (``Banner`` protocol of
``contact_register/requests/writeback/base.py``), found through :mod:`.registry`; :mod:`.run` bans a subject in
every system, verifies by reading back and records each answer in the case."""
