//! Destination rules: which rule decides for a recipient.
//!
//! Rules are tried top to bottom and the first whose conditions all hold
//! decides. A rule without conditions always matches, so a final catch-all
//! rule guarantees everyone is either called or skipped on purpose.

use minijinja::Expression;
use minijinja::value::Value;

use crate::diag::Diagnostic;
use crate::playbook::{Recipient, Rule};
use crate::render::{Templates, template_error};

/// The rules of a playbook with their `when` expressions compiled for one run.
pub struct CompiledRules<'a> {
    rules: &'a [Rule],
    conditions: Vec<Option<Expression<'a, 'a>>>,
}

impl<'a> CompiledRules<'a> {
    /// Compiles every `when` once, so each recipient only evaluates them.
    pub fn new(rules: &'a [Rule], templates: &'a Templates) -> Result<Self, Diagnostic> {
        let conditions = rules
            .iter()
            .map(|r| {
                r.when
                    .as_ref()
                    .map(|(src, site)| templates.expression(src, site))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledRules { rules, conditions })
    }

    /// The first rule that matches `recipient` in `ctx`, if any.
    pub fn first_match(
        &self,
        recipient: &Recipient,
        ctx: &Value,
    ) -> Result<Option<&'a Rule>, Diagnostic> {
        for (rule, condition) in self.rules.iter().zip(&self.conditions) {
            if !rule.tags.is_empty() && !rule.tags.iter().any(|t| recipient.tags.contains(t)) {
                continue;
            }
            if let Some(expr) = condition {
                let holds = expr.eval(ctx).map_err(|e| match &rule.when {
                    Some((_, site)) => template_error(site, &e, Some(&recipient.name)),
                    None => Diagnostic::error(None, e.to_string()),
                })?;
                if !holds.is_true() {
                    continue;
                }
            }
            return Ok(Some(rule));
        }
        Ok(None)
    }
}
