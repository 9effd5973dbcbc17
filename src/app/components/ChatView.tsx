/**
 * Chat mode: a system prompt, one conversation column per source (each answers its own history), and the message
 * box whose message goes to all of them. Says which layout the prompt uses: the model's chat template, or the
 * plain fallback for tokenizers without one.
 */
import { useEffect, useRef } from 'react';
import { FALLBACK_ROLE_HEADER } from '../../data/chat';
import type { GenerationResult } from '../../worker/protocol';
import type { ChatTurnRecord } from '../playground-chat';
import { useStudio } from '../store';
import { Alert } from './Panel';
import { resultStats, SourceName } from './PlaygroundSources';

export function ChatView(props: { canGenerate: boolean }) {
  const s = useStudio();
  const p = s.playground;
  const card = s.model.card;
  const busy = p.requestId !== null;
  const sameModel = p.chatModel === (card?.key ?? null);
  const turns: ChatTurnRecord[] = sameModel ? p.turns : [];
  // The answers on screen are the newest turn (still streaming, or finished and not yet folded into the turns).
  const current = sameModel && p.shownMode === 'chat' && p.order.length > 0 ? p.order : [];
  const columns = [...new Set([...current, ...turns.flatMap((t) => Object.keys(t.results))])];
  const send = () => {
    if (props.canGenerate && p.message.trim() !== '') s.generate();
  };
  return (
    <div className="chat" data-testid="chat">
      {card &&
        (card.tokenizer.chatTemplate ? (
          <p className="chat-layout muted small" data-testid="chat-layout">
            Rendered with {card.name}'s chat template (tokenizer_config.json), with its generation prompt; each answer
            ends at EOS or the template's end-of-turn token.
          </p>
        ) : (
          <Alert kind="info" testId="chat-fallback">
            {card.name} has no chat template. Chat uses the studio's plain layout instead —{' '}
            <code>{FALLBACK_ROLE_HEADER('user').trim()}</code> and{' '}
            <code>{FALLBACK_ROLE_HEADER('assistant').trim()}</code> headers, EOS after each answer — the layout chat
            datasets are trained with on this model. A model never trained on it may ramble: Completion mode is the
            plain alternative.
          </Alert>
        ))}
      <label className="field">
        <span className="field-label">System prompt</span>
        <textarea
          rows={2}
          value={p.system}
          placeholder="Optional: instructions every source gets first"
          onChange={(e) => s.setPlayground({ system: e.target.value })}
          data-testid="chat-system"
        />
      </label>
      {columns.length > 0 ? (
        <div className="chat-columns" data-testid="chat-columns">
          {columns.map((key) => (
            <ChatColumn
              key={key}
              source={key}
              system={p.system}
              turns={turns}
              pending={current.includes(key) ? { user: p.lastPrompt, result: p.results[key] } : null}
            />
          ))}
        </div>
      ) : (
        <div className="empty small">Send a message: the base model and the runs picked above answer side by side.</div>
      )}
      <div className="chat-compose">
        <textarea
          rows={2}
          value={p.message}
          placeholder="Message (Enter sends, Shift+Enter for a new line)"
          onChange={(e) => s.setPlayground({ message: e.target.value })}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              send();
            }
          }}
          aria-label="Message"
          data-testid="chat-input"
        />
        <div className="chat-buttons">
          {busy ? (
            <button className="btn btn-danger" onClick={s.stopGeneration} data-testid="stop-generation">
              Stop
            </button>
          ) : (
            <button
              className="btn btn-primary"
              disabled={!props.canGenerate || p.message.trim() === ''}
              onClick={send}
              data-testid="chat-send"
            >
              Send
            </button>
          )}
          <button
            className="btn btn-ghost btn-sm"
            disabled={busy || columns.length === 0}
            onClick={s.clearChat}
            data-testid="chat-clear"
          >
            Clear conversation
          </button>
        </div>
      </div>
    </div>
  );
}

function ChatColumn(props: {
  source: string;
  system: string;
  turns: ChatTurnRecord[];
  pending: { user: string; result: GenerationResult | undefined } | null;
}) {
  const { source, pending } = props;
  const body = useRef<HTMLDivElement>(null);
  const answer = pending?.result?.text;
  // Follow the answer as it streams, as a chat does.
  useEffect(() => {
    const el = body.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [answer, props.turns.length]);
  const own = props.turns.filter((t) => t.results[source]);
  const last = pending?.result ?? own.at(-1)?.results[source];
  return (
    <div className="chat-column" data-testid="chat-column" data-source={source}>
      <div className="generation-head">
        <SourceName source={source} />
        <span className="muted small">{resultStats(last)}</span>
      </div>
      <div className="chat-messages" ref={body}>
        {props.system.trim() && <ChatBubble speaker="system" text={props.system} />}
        {own.map((t, i) => (
          <div key={i} className="chat-turn">
            <ChatBubble speaker="user" text={t.user} />
            <ChatAnswer result={t.results[source]} />
          </div>
        ))}
        {pending && (
          <div className="chat-turn">
            <ChatBubble speaker="user" text={pending.user} />
            <ChatAnswer result={pending.result} />
          </div>
        )}
      </div>
    </div>
  );
}

const ROLE_NAMES = { system: 'System', user: 'You', assistant: 'Model' } as const;

function ChatBubble(props: { speaker: keyof typeof ROLE_NAMES; text: string; streaming?: boolean }) {
  return (
    <div className={`chat-msg ${props.speaker}`} data-testid={`chat-${props.speaker}`}>
      <span className="chat-role">{ROLE_NAMES[props.speaker]}</span>
      <div className="chat-text">
        {props.text}
        {props.streaming && <span className="caret" />}
      </div>
    </div>
  );
}

function ChatAnswer(props: { result: GenerationResult | undefined }) {
  const r = props.result;
  if (r?.error) return <div className="run-message error">{r.error}</div>;
  // Templates put the answer after a space or newline the model often writes itself: not part of what it says.
  return <ChatBubble speaker="assistant" text={(r?.text ?? '').trimStart()} streaming={!r?.done} />;
}
