"""What the VO tests share besides fixtures: the seed query, and a client's bearer session."""

from __future__ import annotations

import requests

#: The seed query of the ESCAPE platform's HDBSCAN pre-selection, as its users write it.
SEED_QUERY = (
    "SELECT COUNT(*) FROM gaia_source WHERE ABS(b) < 30 AND parallax > 1 "
    "AND parallax_over_error > 10 AND phot_g_mean_flux_over_error > 36.19 "
    "AND astrometric_sigma5d_max < 0.3 AND visibility_periods_used > 8 "
    "AND (astrometric_excess_noise < 1 OR (astrometric_excess_noise > 1 "
    "AND astrometric_excess_noise_sig < 2))")


def bearer(token: str) -> requests.Session:
    """A requests session sending ``token``: how pyvo and astroquery users authenticate."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session
