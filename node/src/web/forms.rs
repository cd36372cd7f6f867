//! Form fields with their label, what was typed, and the error next to them.
//!
//! Every field has a `<label for>`; an error is a paragraph right under its field,
//! tied to it with `aria-describedby` and `aria-invalid`, so a screen reader reads it
//! with the field. A form that fails re-renders with what was typed ([`Typed`]) and
//! nothing saved.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::security::{Ctx, CSRF_FIELD};

/// (value sent, label shown) pairs of a `<select>`.
pub type Options = Vec<(String, String)>;

/// Errors by field name; `""` for errors of the whole form.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_string()).or_insert_with(|| message.into());
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the operator typed, by field name (a form's body, or an empty one).
#[derive(Debug, Default, Clone)]
pub struct Typed(pub Vec<(String, String)>);

impl Typed {
    /// The first value of `name`, trimmed of nothing: as typed.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_string(), value.into()));
    }
    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
    /// `Some(trimmed)` when something was typed.
    pub fn optional(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_string()).filter(|v| !v.is_empty())
    }
}

/// The hidden CSRF field every POST form carries.
pub fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf); }
}

/// The errors of the whole form, above it (and a summary when fields have some).
pub fn form_errors(ctx: &Ctx, errors: &FieldErrors) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="notice error" role="alert" {
                p { strong { (ctx.t("Not saved: please correct the fields marked below.", "Non salvato: correggi i campi segnalati qui sotto.")) } }
                @if let Some(general) = errors.get("") { p { (general) } }
                ul class="error-links" {
                    @for (field, message) in errors.0.iter().filter(|(f, _)| !f.is_empty()) {
                        li { a href={"#f-" (field)} { (message) } }
                    }
                }
            }
        }
    }
}

/// Options of a field beyond its name, label and value.
#[derive(Debug, Default, Clone, Copy)]
pub struct Opts<'a> {
    pub kind: &'a str,
    pub hint: Option<&'a str>,
    pub required: bool,
    pub autocomplete: Option<&'a str>,
    pub extra_class: Option<&'a str>,
}

fn described_by(name: &str, hint: bool, error: bool) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("h-{name}"));
    }
    if error {
        ids.push(format!("e-{name}"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

fn hint_and_error(name: &str, hint: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(hint) = hint { p class="hint" id={"h-" (name)} { (hint) } }
        @if let Some(error) = error { p class="field-error" id={"e-" (name)} { (error) } }
    }
}

/// A text-like `<input>` (text, number, date, tel, email, search, datetime-local).
pub fn input(name: &str, label: &str, value: &str, errors: &FieldErrors, opts: Opts<'_>) -> Markup {
    let error = errors.get(name);
    let kind = if opts.kind.is_empty() { "text" } else { opts.kind };
    html! {
        div class={"field" @if error.is_some() { " has-error" } @if let Some(c) = opts.extra_class { " " (c) }} {
            label for={"f-" (name)} { (label) @if opts.required { " " span class="req" aria-hidden="true" { "*" } } }
            input id={"f-" (name)} type=(kind) name=(name) value=(value)
                required[opts.required]
                autocomplete=[opts.autocomplete]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described_by(name, opts.hint.is_some(), error.is_some())];
            (hint_and_error(name, opts.hint, error))
        }
    }
}

pub fn textarea(name: &str, label: &str, value: &str, errors: &FieldErrors) -> Markup {
    let error = errors.get(name);
    html! {
        div class={"field" @if error.is_some() { " has-error" }} {
            label for={"f-" (name)} { (label) }
            textarea id={"f-" (name)} name=(name) rows="3"
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described_by(name, false, error.is_some())] { (value) }
            (hint_and_error(name, None, error))
        }
    }
}

/// A `<select>`; `options` are (value sent, label shown).
pub fn select(
    name: &str,
    label: &str,
    options: &[(String, String)],
    selected: &str,
    errors: &FieldErrors,
    hint: Option<&str>,
) -> Markup {
    let error = errors.get(name);
    html! {
        div class={"field" @if error.is_some() { " has-error" }} {
            label for={"f-" (name)} { (label) }
            select id={"f-" (name)} name=(name)
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described_by(name, hint.is_some(), error.is_some())] {
                @for (value, text) in options {
                    option value=(value) selected[value == selected] { (text) }
                }
            }
            (hint_and_error(name, hint, error))
        }
    }
}

pub fn checkbox(name: &str, label: &str, checked: bool, errors: &FieldErrors, hint: Option<&str>) -> Markup {
    let error = errors.get(name);
    html! {
        div class={"field check" @if error.is_some() { " has-error" }} {
            input id={"f-" (name)} type="checkbox" name=(name) value="1" checked[checked]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described_by(name, hint.is_some(), error.is_some())];
            label for={"f-" (name)} { (label) }
            (hint_and_error(name, hint, error))
        }
    }
}

/// The options of a closed set of the domain: stored word, label in `lang`.
pub fn vocab_options<T: Copy>(
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> &'static str,
) -> Vec<(String, String)> {
    all.iter().map(|v| (as_str(*v).to_string(), label(*v).to_string())).collect()
}

/// The same with a first "any" option (filters).
pub fn with_any(any: &str, mut options: Vec<(String, String)>) -> Vec<(String, String)> {
    options.insert(0, (String::new(), any.to_string()));
    options
}
