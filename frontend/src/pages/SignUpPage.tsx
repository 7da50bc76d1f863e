import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { useRegister } from "../api/queries";
import { Field } from "../components/Field";
import { formErrorsFrom, type FormErrors } from "../auth/formErrors";

export const MIN_PASSWORD_LENGTH = 8;
const FIELDS = ["email", "password"] as const;

export function validateSignUp(email: string, password: string, confirm: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const trimmed = email.trim();
  if (!trimmed) fields.email = "Enter your email address.";
  else if (!/^[^\s@]+@[^\s@]+$/.test(trimmed)) fields.email = "Enter a valid email address.";
  if (password.length < MIN_PASSWORD_LENGTH) {
    fields.password = `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
  }
  if (!confirm) fields.confirm = "Repeat your password.";
  else if (confirm !== password) fields.confirm = "The passwords do not match.";
  return fields;
}

export function SignUpPage() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<FormErrors>({ fields: {} });
  const register = useRegister();
  const navigate = useNavigate();

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const fields = validateSignUp(email, password, confirm);
    setErrors({ fields });
    if (Object.keys(fields).length) return;
    register.mutate(
      { email: email.trim(), password },
      {
        onSuccess: () => navigate("/health", { replace: true }),
        onError: (err) => setErrors(formErrorsFrom(err, FIELDS)),
      },
    );
  };

  return (
    <section className="page page--narrow">
      <div className="card">
        <h1>Create an account</h1>
        <form onSubmit={onSubmit} noValidate aria-label="Sign up" className="form">
          {errors.form ? (
            <div className="form__error" role="alert" data-testid="form-error">
              {errors.form}
            </div>
          ) : null}
          <Field
            label="Email"
            name="email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            error={errors.fields.email}
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD_LENGTH}
            hint={`At least ${MIN_PASSWORD_LENGTH} characters.`}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={errors.fields.password}
          />
          <Field
            label="Confirm password"
            name="confirm"
            type="password"
            autoComplete="new-password"
            required
            value={confirm}
            onChange={(e) => setConfirm(e.target.value)}
            error={errors.fields.confirm}
          />
          <button type="submit" className="button button--primary button--block" disabled={register.isPending}>
            {register.isPending ? "Creating account…" : "Sign up"}
          </button>
        </form>
        <p className="card__footer">
          Already have an account? <Link to="/signin">Sign in</Link>
        </p>
      </div>
    </section>
  );
}
