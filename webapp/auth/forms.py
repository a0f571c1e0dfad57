from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, ValidationError

from webapp.extensions import db
from webapp.i18n import lazy_gettext as _l
from webapp.services.people import accounts


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class RegisterForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()
    # Only the real submit (rate limited) looks the address up: the inline
    # check must not tell anyone who has an account.
    check_taken = True

    def validate_email(self, field):
        if self.check_taken and accounts.email_taken(db.session, field.data or ""):
            raise ValidationError(_("An account with this e-mail already exists. Log in instead?"))

    def validate_password(self, field):
        problem = accounts.password_problem(field.data or "", self.email.data or "")
        if problem:
            raise ValidationError(problem)
