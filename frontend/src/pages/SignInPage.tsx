import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useLogin } from "../api/queries";
import { Field } from "../components/Field";
import { formErrorsFrom, safeNext, type FormErrors } from "../auth/formErrors";

const FIELDS = ["email", "password"] as const;

export function SignInPage() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<FormErrors>({ fields: {} });
  const login = useLogin();
  const navigate = useNavigate();
  const [params] = useSearchParams();

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const fields: Record<string, string> = {};
    if (!email.trim()) fields.email = "Enter your email address.";
    if (!password) fields.password = "Enter your password.";
    setErrors({ fields });
    if (Object.keys(fields).length) return;
    login.mutate(
      { email: email.trim(), password },
      {
        onSuccess: () => navigate(safeNext(params.get("next")), { replace: true }),
        onError: (err) => setErrors(formErrorsFrom(err, FIELDS)),
      },
    );
  };

  return (
    <section className="page page--narrow">
      <div className="card">
        <h1>Sign in</h1>
        <form onSubmit={onSubmit} noValidate aria-label="Sign in" className="form">
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
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={errors.fields.password}
          />
          <button type="submit" className="button button--primary button--block" disabled={login.isPending}>
            {login.isPending ? "Signing in…" : "Sign in"}
          </button>
        </form>
        <p className="card__footer">
          New here? <Link to="/signup">Create an account</Link>
        </p>
      </div>
    </section>
  );
}
