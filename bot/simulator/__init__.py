"""Stand-ins for external services, speaking their real HTTP APIs (tests, demo, benchmarks).

`CodeStreamSimulator` is a real aiohttp server for the Code Stream 2019-10-17 API plus the
vRA and CSP login endpoints; `Fault` injects misbehaviour into it.
"""

from bot.simulator.codestream import API_VERSION, CodeStreamSimulator, serve_forever
from bot.simulator.cs_faults import Fault, RecordedRequest
from bot.simulator.cs_seed import (
    SAMPLE_COMPLETED_EXECUTION_2_ID,
    SAMPLE_COMPLETED_EXECUTION_ID,
    SAMPLE_COMPLETED_GIT_2_ID,
    SAMPLE_COMPLETED_GIT_ID,
    SAMPLE_FAILED_DOCKER_EXECUTION_ID,
    SAMPLE_FAILED_DOCKER_ID,
    SAMPLE_FAILED_EXECUTION_ID,
    SAMPLE_FAILED_GERRIT_EXECUTION_ID,
    SAMPLE_FAILED_GERRIT_ID,
    SAMPLE_FAILED_GIT_ID,
    SAMPLE_TRIGGER_FAILED_GIT_ID,
    TRIGGER_FAILURE_MESSAGE,
)

__all__ = [
    "API_VERSION",
    "SAMPLE_COMPLETED_EXECUTION_2_ID",
    "SAMPLE_COMPLETED_EXECUTION_ID",
    "SAMPLE_COMPLETED_GIT_2_ID",
    "SAMPLE_COMPLETED_GIT_ID",
    "SAMPLE_FAILED_DOCKER_EXECUTION_ID",
    "SAMPLE_FAILED_DOCKER_ID",
    "SAMPLE_FAILED_EXECUTION_ID",
    "SAMPLE_FAILED_GERRIT_EXECUTION_ID",
    "SAMPLE_FAILED_GERRIT_ID",
    "SAMPLE_FAILED_GIT_ID",
    "SAMPLE_TRIGGER_FAILED_GIT_ID",
    "TRIGGER_FAILURE_MESSAGE",
    "CodeStreamSimulator",
    "Fault",
    "RecordedRequest",
    "serve_forever",
]
