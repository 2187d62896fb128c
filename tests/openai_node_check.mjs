// openai_node_check.mjs BASE_URL MODEL — the official OpenAI client for Node.js against `pika serve-model`
// (run by tests/openai_node_check.sh from the directory where `openai` is installed).
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'not-needed', maxRetries: 0, timeout: 60000 });
let failed = 0;
function check(cond, what) {
  console.log((cond ? 'ok   ' : 'FAIL ') + what);
  if (!cond) failed++;
}
const messages = [{ role: 'user', content: 'What is 12 + 45?' }];

const models = await client.models.list();
check(models.data.some((m) => m.id === model), `models.list() lists ${model}`);

const c = await client.completions.create({ model, prompt: 'What is 3 + 4?', max_tokens: 8, temperature: 0 });
check(c.object === 'text_completion' && typeof c.choices[0].text === 'string' && c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens,
  `completions.create(): '${c.choices[0].text}', finish ${c.choices[0].finish_reason}`);

const ch = await client.chat.completions.create({ model, messages, temperature: 0 });
check(ch.object === 'chat.completion' && ch.choices[0].message.role === 'assistant' && ch.choices[0].message.content === '57',
  `chat.completions.create(): 12 + 45 = ${ch.choices[0].message.content}`);

const stream = await client.chat.completions.create({ model, messages, temperature: 0, stream: true, stream_options: { include_usage: true } });
let text = '', usage = null, chunks = 0, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length) {
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}
check(text === '57' && finish === 'stop' && usage && usage.completion_tokens === ch.usage.completion_tokens,
  `streamed chat: '${text}' in ${chunks} chunks, finish ${finish}, usage ${JSON.stringify(usage)}`);

const cs = await client.completions.create({ model, prompt: 'What is 3 + 4?', max_tokens: 8, temperature: 0, stream: true });
let ctext = '';
for await (const chunk of cs) ctext += chunk.choices[0]?.text ?? '';
check(ctext === c.choices[0].text, `streamed completion equals the plain one: '${ctext}'`);

const many = await client.chat.completions.create({ model, messages, n: 3, seed: 11, temperature: 1.2, max_tokens: 6 });
const again = await client.chat.completions.create({ model, messages, n: 3, seed: 11, temperature: 1.2, max_tokens: 6 });
check(many.choices.length === 3 && many.choices.map((x) => x.index).join() === '0,1,2' &&
  JSON.stringify(many.choices) === JSON.stringify(again.choices), 'n = 3 with a seed: three choices, reproducible');

const lp = await client.chat.completions.create({ model, messages, temperature: 0, logprobs: true, top_logprobs: 2 });
const first = lp.choices[0].logprobs?.content?.[0];
check(first && first.token === '5' && first.top_logprobs.length === 2 && first.logprob <= 0, `logprobs: first token '${first?.token}' ${first?.logprob}`);

try {
  await client.chat.completions.create({ model, messages, temperature: 'hot' });
  check(false, 'a bad temperature raises');
} catch (e) {
  check(e instanceof OpenAI.APIError && e.status === 400 && /temperature/.test(e.message), `a bad temperature raises a 400 APIError (${e.status}: ${e.message})`);
}
try {
  await client.chat.completions.create({ model, messages: [] });
  check(false, 'empty messages raise');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError, `empty messages raise BadRequestError (${e.status})`);
}
try {
  await client.models.retrieve('no-such-model');
  check(false, 'an unknown model raises');
} catch (e) {
  check(e instanceof OpenAI.NotFoundError, `models.retrieve() of an unknown model raises NotFoundError (${e.status})`);
}

if (failed) {
  console.log(`openai-node: ${failed} check(s) failed`);
  process.exit(1);
}
console.log('openai-node: all checks passed');
