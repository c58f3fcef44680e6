pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.auth",
    "tests.fixtures.app",
    "tests.fixtures.access",
    "tests.fixtures.clock",
]
