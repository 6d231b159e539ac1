"""rolechain: run automation across many AWS accounts through IAM role chaining."""

from rolechain.chain import Chain, Hop, default_session_name, new_run_id, parse_chain
from rolechain.errors import AssumeRoleError, BaseCredentialsError, ConfigError, HopFailure, RolechainError
from rolechain.sessions import CACHE, ChainSessions, CredentialCache, Identity

__all__ = [
    "CACHE",
    "AssumeRoleError",
    "BaseCredentialsError",
    "Chain",
    "ChainSessions",
    "ConfigError",
    "CredentialCache",
    "Hop",
    "HopFailure",
    "Identity",
    "RolechainError",
    "default_session_name",
    "new_run_id",
    "parse_chain",
]
__version__ = "0.1.0"
