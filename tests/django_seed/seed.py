"""
The seed's Django project, for tests/http/test_import.py: its models (users/), its
settings for a SQLite or PostgreSQL database, the register view that makes duplicate
accounts under several gunicorn workers, and a maker of source databases from a JSON
spec, all with Django's own code (never hand-written SQL).

    /usr/bin/python3 seed.py make DB SPEC.json   -> JSON {"users": {username: id},
                                                       "tokens": {username: key}}
    gunicorn -w 4 seed:app  (SEED_DB=DB)           -> POST /register/ {username, email}
DB is sqlite:PATH or a postgresql:// URL. Hashers run at their cheapest costs.
"""

import json
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import django  # noqa: E402
from django.conf import settings  # noqa: E402


def database(url):
    if url.startswith("sqlite:"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url[7:],
                "OPTIONS": {"timeout": 30}}
    u = urllib.parse.urlparse(url)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": u.path.lstrip("/"),
            "USER": urllib.parse.unquote(u.username or ""),
            "PASSWORD": urllib.parse.unquote(u.password or ""),
            "HOST": u.hostname or "", "PORT": str(u.port or "")}


settings.configure(
    DEBUG=False, SECRET_KEY="test-only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    DATABASES={"default": database(os.environ.get("SEED_DB") or sys.argv[2])},
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework",
                    "rest_framework.authtoken", "users"],
    PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
    USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField")
django.setup()

from django.contrib.auth import hashers  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from users.models import Profile, TeacherInvitation  # noqa: E402


class PBKDF2(hashers.PBKDF2PasswordHasher):
    iterations = 1000


class PBKDF2SHA1(hashers.PBKDF2SHA1PasswordHasher):
    iterations = 1000


class Argon2(hashers.Argon2PasswordHasher):
    time_cost, memory_cost, parallelism = 1, 64, 2


class BCryptSHA256(hashers.BCryptSHA256PasswordHasher):
    rounds = 4


class BCrypt(hashers.BCryptPasswordHasher):
    rounds = 4


HASHERS = {"pbkdf2_sha256": PBKDF2(), "pbkdf2_sha1": PBKDF2SHA1(), "argon2": Argon2(),
           "bcrypt_sha256": BCryptSHA256(), "bcrypt": BCrypt(),
           "md5": hashers.MD5PasswordHasher(), "unsalted_md5": hashers.UnsaltedMD5PasswordHasher(),
           "unsalted_sha1": hashers.UnsaltedSHA1PasswordHasher()}


def when(s):
    return None if s is None else timezone.datetime.fromisoformat(s).replace(
        tzinfo=timezone.utc)


def make_user(spec):
    """One account as the seed's views make it: User, then its Profile (unless absent)."""
    u = User(username=spec["username"], email=spec.get("email", ""),
             first_name=spec.get("first_name", ""), last_name=spec.get("last_name", ""),
             is_active=spec.get("is_active", True), is_staff=spec.get("is_staff", False),
             is_superuser=spec.get("is_superuser", False))
    if spec.get("password") is None:
        u.set_unusable_password()
    else:
        u.password = hashers.make_password(spec["password"],
                                           hasher=HASHERS[spec.get("hasher", "pbkdf2_sha256")])
    if spec.get("date_joined"):
        u.date_joined = when(spec["date_joined"])
    u.last_login = when(spec.get("last_login"))
    u.save()
    if spec.get("profile", True):
        p = spec.get("profile") if isinstance(spec.get("profile"), dict) else {}
        kw = {"role": p.get("role", "explorer"), "bio": p.get("bio", "")}
        if hasattr(Profile, "can_invite_teachers"):
            kw["can_invite_teachers"] = p.get("can_invite_teachers", False)
        Profile.objects.update_or_create(user=u, defaults=kw)
    return u


def make(spec):
    # Django's apps first: the seed's app (no migration files) refers to auth_user
    call_command("migrate", verbosity=0, interactive=False)
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    out = {"users": {}, "tokens": {}, "invitations": {}}
    for s in spec.get("users", []):
        u = User.objects.filter(username=s["username"]).first() if s.get("update") else None
        if u is not None:  # a change made in Django between two imports
            for k in ("email", "first_name", "last_name", "is_active"):
                if k in s:
                    setattr(u, k, s[k])
            if "password" in s:
                u.password = hashers.make_password(s["password"],
                                                   hasher=HASHERS[s.get("hasher", "pbkdf2_sha256")])
            if "last_login" in s:
                u.last_login = when(s["last_login"])
            u.save()
            if "profile" in s:
                Profile.objects.filter(user=u).update(**s["profile"])
        else:
            u = make_user(s)
        out["users"][s["username"]] = u.pk
        if s.get("token"):
            Token.objects.filter(user=u).delete()
            out["tokens"][s["username"]] = Token.objects.create(user=u).key
    bulk = spec.get("bulk")
    if bulk:  # many accounts sharing one precomputed hash, so making them stays quick
        pw = hashers.make_password(bulk["password"], hasher=HASHERS["pbkdf2_sha256"])
        users = User.objects.bulk_create(
            [User(username=f"{bulk['prefix']}{n}", email=f"{bulk['prefix']}{n}@example.com",
                  password=pw) for n in range(bulk["n"])], batch_size=500)
        if not users or users[0].pk is None:
            users = list(User.objects.filter(username__startswith=bulk["prefix"]))
        Profile.objects.bulk_create([Profile(user=u, role="explorer") for u in users],
                                    batch_size=500)
        out["bulk"] = len(users)
    for i in spec.get("invitations", []):
        by = User.objects.get(username=i["invited_by"])
        acc = User.objects.get(username=i["accepted_by"]) if i.get("accepted_by") else None
        inv = TeacherInvitation.objects.create(
            email=i["email"], token=i["token"], status=i["status"], invited_by=by,
            accepted_by=acc, created_at=when(i["created_at"]), expires_at=when(i["expires_at"]),
            accepted_at=when(i.get("accepted_at")))
        out["invitations"][i["token"]] = inv.pk
    return out


@csrf_exempt
def register(request):
    """The seed's RegisterView: check, then insert. Two workers both pass the check."""
    body = json.loads(request.body)
    if User.objects.filter(email=body["email"]).exists():
        return JsonResponse({"error": "Email already registered."}, status=400)
    time.sleep(0.3)  # the view's other work (validation, the serializer) between the two
    try:
        u = User.objects.create_user(body["username"], body["email"], "Seed-password-1")
    except Exception:  # the username race: an IntegrityError, a 500 in the seed
        return JsonResponse({"error": "internal"}, status=500)
    Profile.objects.update_or_create(user=u, defaults={"role": "explorer"})
    return JsonResponse({"id": u.pk}, status=201)


urlpatterns = [path("register/", register)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()

if __name__ == "__main__" and sys.argv[1] == "make":
    with open(sys.argv[3]) as f:
        print(json.dumps(make(json.load(f))))
