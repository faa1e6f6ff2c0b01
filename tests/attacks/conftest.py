"""The attacks use the fixtures of the suites they attack: the space's database with admitted
members and a market (tests/space), the console's space, the homomorphic jobs' world."""

from tests.integration.test_he_jobs import world  # noqa: F401
from tests.space.conftest import db, members  # noqa: F401
from tests.space.test_console import space  # noqa: F401
from tests.space.test_settlement import market  # noqa: F401
