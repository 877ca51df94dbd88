//! Prompt templates, by name. The one place that knows how a question is
//! turned into the text a model sees.

use std::path::Path;

use crate::PrepError;

/// The instruction of the Qwen2.5-Math CoT format and of the recipe.
pub const COT_INSTRUCTION: &str =
    r"Please reason step by step, and put your final answer within \boxed{}.";

/// A named prompt template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TemplateName {
    /// Qwen2.5-Math CoT: the instruction as the system turn, the question as
    /// the user turn, Qwen chat markup.
    QwenMathCot,
    /// The prompts of the published recipe's train.parquet, byte for byte:
    /// system "You are a helpful assistant.", the instruction (with its
    /// literal `\boxed{{}}`) appended to the question.
    SimplerlZoo,
    /// The model's own chat template (tokenizer_config.json), the
    /// instruction appended to the question as the user turn.
    Chat,
    /// No markup: the question, a newline, the instruction.
    Plain,
}

impl TemplateName {
    pub const ALL: [TemplateName; 4] = [
        TemplateName::QwenMathCot,
        TemplateName::SimplerlZoo,
        TemplateName::Chat,
        TemplateName::Plain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::QwenMathCot => "qwen-math-cot",
            TemplateName::SimplerlZoo => "simplerl-zoo",
            TemplateName::Chat => "chat",
            TemplateName::Plain => "plain",
        }
    }
}

impl std::fmt::Display for TemplateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A template ready to render questions.
#[derive(Debug, Clone)]
pub struct Template {
    name: TemplateName,
    instruction: String,
    /// For `chat`: the Jinja source and the special tokens it may use.
    chat: Option<ChatTemplate>,
}

#[derive(Debug, Clone)]
struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
    system: Option<String>,
}

impl Template {
    /// A markup template (`qwen-math-cot`, `simplerl-zoo`, `plain`) with the
    /// default instruction. `chat` needs [`Template::chat`].
    pub fn new(name: TemplateName) -> Result<Self, PrepError> {
        if name == TemplateName::Chat {
            return Err(PrepError::Template(
                "the `chat` template needs the model's tokenizer_config.json (--tokenizer-config)"
                    .into(),
            ));
        }
        Ok(Self {
            name,
            instruction: COT_INSTRUCTION.to_string(),
            chat: None,
        })
    }

    /// The `chat` template from a model's tokenizer_config.json (its
    /// `chat_template`, `bos_token`, `eos_token`), with an optional system
    /// turn.
    pub fn chat(tokenizer_config: &Path, system: Option<String>) -> Result<Self, PrepError> {
        let text = std::fs::read_to_string(tokenizer_config).map_err(|source| PrepError::Io {
            path: tokenizer_config.to_path_buf(),
            source,
        })?;
        let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| PrepError::Json {
            path: tokenizer_config.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })?;
        let source = match &cfg["chat_template"] {
            serde_json::Value::String(s) => s.clone(),
            // A list of named templates: take "default".
            serde_json::Value::Array(list) => list
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_string)
                .ok_or_else(|| no_template(tokenizer_config))?,
            _ => return Err(no_template(tokenizer_config)),
        };
        let token = |k: &str| match &cfg[k] {
            serde_json::Value::String(s) => s.clone(),
            v => v["content"].as_str().unwrap_or_default().to_string(),
        };
        let t = Self {
            name: TemplateName::Chat,
            instruction: COT_INSTRUCTION.to_string(),
            chat: Some(ChatTemplate {
                source,
                bos_token: token("bos_token"),
                eos_token: token("eos_token"),
                system,
            }),
        };
        t.render("1 + 1")?; // fail at load time, not on row 1
        Ok(t)
    }

    /// Replace the instruction (the default is [`COT_INSTRUCTION`]).
    /// `simplerl-zoo` keeps its published text and ignores this.
    pub fn with_instruction(mut self, instruction: impl Into<String>) -> Self {
        self.instruction = instruction.into();
        self
    }

    pub fn name(&self) -> TemplateName {
        self.name
    }

    /// The prompt text for `question`.
    pub fn render(&self, question: &str) -> Result<String, PrepError> {
        let instr = &self.instruction;
        Ok(match self.name {
            TemplateName::QwenMathCot => format!(
                "<|im_start|>system\n{instr}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
            ),
            TemplateName::SimplerlZoo => format!(
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{question}\nPlease reason step by step, and put your final answer within \\boxed{{{{}}}}.<|im_end|>\n<|im_start|>assistant\n"
            ),
            TemplateName::Plain => format!("{question}\n{instr}\n"),
            TemplateName::Chat => {
                let chat = self.chat.as_ref().expect("chat template loaded");
                render_chat(chat, &format!("{question}\n{instr}"))?
            }
        })
    }
}

fn no_template(path: &Path) -> PrepError {
    PrepError::Template(format!(
        "{}: no `chat_template` string in this tokenizer_config.json",
        path.display()
    ))
}

fn render_chat(chat: &ChatTemplate, user: &str) -> Result<String, PrepError> {
    let mut env = minijinja::Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    let err = |e: minijinja::Error| PrepError::Template(format!("chat template: {e}"));
    env.add_template("chat", &chat.source).map_err(err)?;
    let mut messages = Vec::new();
    if let Some(sys) = &chat.system {
        messages.push(serde_json::json!({"role": "system", "content": sys}));
    }
    messages.push(serde_json::json!({"role": "user", "content": user}));
    env.get_template("chat")
        .map_err(err)?
        .render(minijinja::context! {
            messages => minijinja::Value::from(minijinja::value::Serde(&messages)),
            add_generation_prompt => true,
            bos_token => chat.bos_token.as_str(),
            eos_token => chat.eos_token.as_str(),
        })
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_math_cot_markup() {
        let t = Template::new(TemplateName::QwenMathCot).unwrap();
        assert_eq!(
            t.render("What is 1 + 1?").unwrap(),
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn simplerl_zoo_keeps_double_braces() {
        let t = Template::new(TemplateName::SimplerlZoo).unwrap();
        assert!(t.render("Q").unwrap().contains("\nQ\nPlease reason step by step, and put your final answer within \\boxed{{}}.<|im_end|>"));
    }

    #[test]
    fn chat_renders_a_model_template() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tokenizer_config.json");
        let tpl = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        std::fs::write(
            &cfg,
            serde_json::json!({"chat_template": tpl, "eos_token": "<|im_end|>"}).to_string(),
        )
        .unwrap();
        let t = Template::chat(&cfg, None).unwrap();
        assert_eq!(
            t.render("What is 2 + 3?").unwrap(),
            format!("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?\n{COT_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n")
        );
    }

    #[test]
    fn chat_without_config_is_a_clear_error() {
        let e = Template::new(TemplateName::Chat).unwrap_err().to_string();
        assert!(e.contains("tokenizer_config.json"), "{e}");
    }
}
