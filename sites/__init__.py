"""Sites, gates and car parks: the pure rules shared by the edge endpoint and the parking job.

:mod:`sites.lists` (the hotlist's lists with holders), :mod:`sites.access` (the barrier's
answer), :mod:`sites.tariff` (what a stay costs), :mod:`sites.pairing` (entries and exits into
stays) and :mod:`sites.presence` (who is inside, as the edge sees it) do no I/O;
:mod:`sites.feed` keeps the edge's local copy of the lists and stays from their compacted topics.
"""
