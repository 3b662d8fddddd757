"""The IVOA protocols: TAP 1.1 with UWS async jobs and VOSI (:mod:`.tap`), Simple Cone
Search (:mod:`.scs`); the documents they answer with (:mod:`.uws`, :mod:`.vosi`)."""
