import { describe, expect, it } from "vitest";
import { ApiError } from "../api/errors";
import { formErrorsFrom, safeNext } from "./formErrors";

describe("formErrorsFrom", () => {
  it("puts email_taken next to the email field", () => {
    const err = new ApiError(409, "email_taken", "a user with email x already exists");
    expect(formErrorsFrom(err, ["email", "password"])).toEqual({
      fields: { email: "a user with email x already exists" },
    });
  });
  it("uses a form-level message when no field is named", () => {
    const err = new ApiError(401, "bad_credentials", "wrong email or password");
    expect(formErrorsFrom(err, ["email", "password"])).toEqual({ form: "wrong email or password", fields: {} });
  });
  it("keeps errors for unknown fields visible at form level", () => {
    const err = new ApiError(422, "validation_error", "invalid", { email: "bad", other: "nope" });
    expect(formErrorsFrom(err, ["email"])).toEqual({ form: "other: nope", fields: { email: "bad" } });
  });
});

describe("safeNext", () => {
  it("allows same-site paths only", () => {
    expect(safeNext("/tokens")).toBe("/tokens");
    expect(safeNext("//evil.example")).toBe("/health");
    expect(safeNext("https://evil.example")).toBe("/health");
    expect(safeNext(null)).toBe("/health");
  });
});
