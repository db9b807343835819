import test from "ava";
import { hashToken, newToken } from "./tokens.js";

test("a token carries at least 256 random bits, in base64url", (t) => {
  const token = newToken();
  t.regex(token, /^[A-Za-z0-9_-]+$/);
  t.true(Buffer.from(token, "base64url").length >= 32);
});

test("tokens do not repeat", (t) => {
  const tokens = new Set(Array.from({ length: 1000 }, newToken));
  t.is(tokens.size, 1000);
});

test("the hash is stable, differs from the token, and differs between tokens", (t) => {
  const token = newToken();
  const hash = hashToken(token);
  t.is(hashToken(token), hash);
  t.not(hash, token);
  t.false(hash.includes(token));
  t.not(hashToken(newToken()), hash);
});

test("the hash is SHA-256 in hex", (t) => {
  t.is(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});
