"""
The seed's `users` app, as its production database has it: Profile (one per user,
role explorer/teacher/admin, bio, can_invite_teachers) and TeacherInvitation. With
SEED_NO_CAN_INVITE=1 the profile lacks can_invite_teachers, as a production database
that missed that migration does.
"""

import os

from django.conf import settings
from django.db import models


class Profile(models.Model):
    ROLES = [("explorer", "Explorer"), ("teacher", "Teacher"), ("admin", "Admin")]
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=ROLES, default="explorer")
    bio = models.TextField(blank=True, default="")
    if os.environ.get("SEED_NO_CAN_INVITE") != "1":
        can_invite_teachers = models.BooleanField(default=False)

    class Meta:
        app_label = "users"


class TeacherInvitation(models.Model):
    STATUSES = [("pending", "pending"), ("accepted", "accepted"), ("expired", "expired"),
                ("revoked", "revoked")]
    email = models.EmailField()
    token = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=STATUSES, default="pending")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="+")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="+")

    class Meta:
        app_label = "users"
