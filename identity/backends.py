"""The session's user comes with his tenant membership, in the one query Django makes for him.

The ACS token endpoint's warm path and every member page need the member and his tenant: loaded
with the user (one join), they cost no query of their own. Staff and superusers have no
membership; `user.tenant_user` then raises without a query.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

BACKEND = "identity.backends.MemberBackend"


class MemberBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        user = (
            get_user_model()._default_manager.select_related("tenant_user__tenant__vendor").filter(pk=user_id).first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
