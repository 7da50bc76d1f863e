import { useRef, useState, type FormEvent } from "react";
import { useCreateToken, useRevokeToken, useTokens } from "../api/queries";
import { errorMessage } from "../api/errors";
import type { ApiToken, CreatedToken } from "../api/types";
import { Field } from "../components/Field";
import { Loading } from "../components/Loading";
import { formErrorsFrom, type FormErrors } from "../auth/formErrors";
import { formatDateTime } from "../time";

function NewTokenPanel({ token, onDismiss }: { token: CreatedToken; onDismiss: () => void }) {
  const [copied, setCopied] = useState<"idle" | "copied" | "failed">("idle");
  const codeRef = useRef<HTMLElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token.token);
      setCopied("copied");
      return;
    } catch {
      // No async clipboard (plain-http origin, denied permission): select the text and try the old way.
    }
    const selection = window.getSelection();
    if (codeRef.current && selection) {
      const range = document.createRange();
      range.selectNodeContents(codeRef.current);
      selection.removeAllRanges();
      selection.addRange(range);
    }
    setCopied(document.execCommand?.("copy") ? "copied" : "failed");
  };
  return (
    <div className="card card--highlight" role="region" aria-label="New token" data-testid="new-token">
      <h2>Token “{token.name}” created</h2>
      <p>Copy it now: it will not be shown again.</p>
      <div className="secret">
        <code ref={codeRef} data-testid="new-token-value">{token.token}</code>
        <button type="button" className="button" onClick={copy}>
          {copied === "copied" ? "Copied" : "Copy"}
        </button>
      </div>
      {copied === "failed" ? (
        <p className="field__error" role="status">
          Could not copy automatically; the token is selected, copy it by hand.
        </p>
      ) : null}
      <button type="button" className="button button--ghost" onClick={onDismiss}>
        Done
      </button>
    </div>
  );
}

function TokenRow({ token }: { token: ApiToken }) {
  const revoke = useRevokeToken();
  const [confirming, setConfirming] = useState(false);
  return (
    <tr data-testid="token-row">
      <td>{token.name}</td>
      <td>{formatDateTime(token.created_at)}</td>
      <td>{token.last_used_at ? formatDateTime(token.last_used_at) : "never"}</td>
      <td className="actions">
        {revoke.isError ? <span className="field__error">{errorMessage(revoke.error)} </span> : null}
        {confirming ? (
          <>
            <button
              type="button"
              className="button button--danger"
              disabled={revoke.isPending}
              onClick={() => revoke.mutate(token.id)}
              aria-label={`Confirm revoking ${token.name}`}
            >
              {revoke.isPending ? "Revoking…" : "Confirm revoke"}
            </button>
            <button type="button" className="button button--ghost" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </>
        ) : (
          <button
            type="button"
            className="button"
            onClick={() => setConfirming(true)}
            aria-label={`Revoke ${token.name}`}
          >
            Revoke
          </button>
        )}
      </td>
    </tr>
  );
}

export function TokensPage() {
  const tokens = useTokens();
  const create = useCreateToken();
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<FormErrors>({ fields: {} });
  const [created, setCreated] = useState<CreatedToken | null>(null);

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!name.trim()) {
      setErrors({ fields: { name: "Give the token a name." } });
      return;
    }
    setErrors({ fields: {} });
    create.mutate(name.trim(), {
      onSuccess: (token) => {
        setCreated(token);
        setName("");
      },
      onError: (err) => setErrors(formErrorsFrom(err, ["name"])),
    });
  };

  return (
    <section className="page">
      <div className="page-head">
        <h1>API tokens</h1>
      </div>
      <p className="muted">Tokens let scripts and the CLI use the API as you. Send one as <code>Authorization: Bearer …</code>.</p>

      {created ? <NewTokenPanel token={created} onDismiss={() => setCreated(null)} /> : null}

      <div className="card">
        <form onSubmit={onSubmit} noValidate aria-label="Create token" className="form form--inline">
          <Field
            label="Token name"
            name="name"
            placeholder="e.g. laptop CLI"
            maxLength={200}
            value={name}
            onChange={(e) => setName(e.target.value)}
            error={errors.fields.name}
          />
          <button type="submit" className="button button--primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create token"}
          </button>
        </form>
        {errors.form ? (
          <div className="form__error" role="alert">
            {errors.form}
          </div>
        ) : null}
      </div>

      <div className="card">
        <h2>Your tokens</h2>
        {tokens.isPending ? <Loading label="Loading tokens…" /> : null}
        {tokens.isError ? (
          <div className="banner banner--error" role="alert">
            Could not load tokens: {errorMessage(tokens.error)}
          </div>
        ) : null}
        {tokens.data && tokens.data.length === 0 ? <p className="muted">No tokens yet.</p> : null}
        {tokens.data && tokens.data.length > 0 ? (
          <table className="table" data-testid="tokens-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((t) => (
                <TokenRow key={t.id} token={t} />
              ))}
            </tbody>
          </table>
        ) : null}
      </div>
    </section>
  );
}
