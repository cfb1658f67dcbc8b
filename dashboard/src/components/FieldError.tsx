/** The daemon's word on one field of a form, shown under that field. */
export function FieldError({ messages, testid }: { messages?: string[]; testid: string }) {
  if (!messages?.length) return null;
  return (
    <div className="field-error" role="alert" data-testid={testid}>
      {messages.map((m) => (
        <div key={m}>{m}</div>
      ))}
    </div>
  );
}

/** What went wrong with a form or an action as a whole, shown where it was asked for. */
export function FormError({ message, testid }: { message: string; testid: string }) {
  if (!message) return null;
  return (
    <div className="form-error" role="alert" data-testid={testid}>
      {message}
    </div>
  );
}
