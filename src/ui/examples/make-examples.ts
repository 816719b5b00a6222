// Writes the built-in example datasets (src/ui/examples/*.jsonl) that let a workshop start with
// no files of its own. Deterministic (seeded), so re-running it rewrites identical files:
//   node --import ./scripts/register.mjs src/ui/examples/make-examples.ts
// - iso-dates.jsonl     chat: a fixed answer format (any written date → YYYY-MM-DD, nothing else)
// - pirate.jsonl        chat: a persona and style (Captain Whittlebeard answers in pirate speak)
// - story-endings.jsonl prompt/completion: a story opening → a short ending with a moral, in the
//                       register of TinyStories (suits the tiny base models that have no chat template)
// It is not part of the app bundle: the app imports the .jsonl files it writes.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { mulberry32 as rng } from '../../rng.ts';
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

// ---- iso-dates: a fixed answer format --------------------------------------------------------
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS_IN = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const ord = (d: number) => `${d}${d % 10 === 1 && d !== 11 ? 'st' : d % 10 === 2 && d !== 12 ? 'nd' : d % 10 === 3 && d !== 13 ? 'rd' : 'th'}`;
const p2 = (n: number) => String(n).padStart(2, '0');

function isoDates(): string[] {
  const r = rng(20240501);
  const system = 'Rewrite the date the user gives in ISO 8601 form, YYYY-MM-DD. Reply with the date only.';
  const asks = ['Normalize this date: {d}', 'What is {d} in ISO format?', 'Convert to YYYY-MM-DD: {d}', '{d}', 'Date: {d}', 'Please format {d} as an ISO date.'];
  const styles: Array<(y: number, m: number, d: number) => string> = [
    (y, m, d) => `${MONTHS[m]} ${d}, ${y}`,
    (y, m, d) => `${d} ${MONTHS[m]} ${y}`,
    (y, m, d) => `the ${ord(d)} of ${MONTHS[m]}, ${y}`,
    (y, m, d) => `${MONTHS[m].slice(0, 3)} ${ord(d)} ${y}`,
    (y, m, d) => `${p2(d)}.${p2(m + 1)}.${y}`,
    (y, m, d) => `${y}/${m + 1}/${d}`,
    (y, m, d) => `${d}-${MONTHS[m].slice(0, 3)}-${y}`,
    (y, m, d) => `${MONTHS[m]} ${ord(d)}, ${y}`,
  ];
  const out: string[] = [];
  const seen = new Set<string>();
  while (out.length < 160) {
    const y = 1950 + Math.floor(r() * 90), m = Math.floor(r() * 12), d = 1 + Math.floor(r() * DAYS_IN[m]);
    const written = pick(r, styles)(y, m, d);
    const user = pick(r, asks).replace('{d}', written);
    if (seen.has(user)) continue;
    seen.add(user);
    out.push(JSON.stringify({ messages: [
      { role: 'system', content: system },
      { role: 'user', content: user },
      { role: 'assistant', content: `${y}-${p2(m + 1)}-${p2(d)}` },
    ] }));
  }
  return out;
}

// ---- pirate: a persona and a style -----------------------------------------------------------
// [topic, question forms, the plain fact the captain states]
const FACTS: Array<[string[], string]> = [
  [['Why is the sky blue?', 'What makes the sky look blue?', 'How come the sky is blue and not green?'], 'sunlight scatters off the air, and blue light scatters the most, so blue fills the whole sky'],
  [['How hot does water have to be to boil?', 'At what temperature does water boil?', 'When does water start boiling?'], 'water boils at 100 degrees Celsius at sea level, and a bit lower up on a mountain'],
  [['Why do we have tides?', 'What causes the tides?', 'Where do the tides come from?'], 'the Moon pulls on the oceans, so the water heaps up and falls back twice a day'],
  [['How many continents are there?', 'Can you name the continents?', 'How many continents does Earth have?'], 'there be seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America'],
  [['What is the biggest ocean?', 'Which ocean is the largest?', 'Which sea is the widest of them all?'], 'the Pacific is the biggest ocean, wider than all the land on Earth put together'],
  [['How do I make a cup of tea?', 'What is the right way to brew tea?', 'Can you teach me to make tea?'], 'boil the water, pour it over the leaves, wait three to five minutes, then take the leaves out'],
  [['How many legs does a spider have?', 'Do spiders have six legs?', 'Count the legs on a spider for me.'], 'a spider has eight legs, two more than any insect'],
  [['What is the capital of France?', 'Which city is the capital of France?', 'Where does France keep its government?'], 'Paris is the capital of France, sitting on the river Seine'],
  [['How far away is the Moon?', 'What is the distance to the Moon?', 'How long a voyage is it to the Moon?'], 'the Moon is about 384,000 kilometres away, a voyage of three days for the Apollo crews'],
  [['Why do leaves change colour in autumn?', 'What makes leaves turn red and yellow?', 'Why do trees go orange in the fall?'], 'the trees stop making green chlorophyll, and the yellow and red colours underneath show through'],
  [['How do plants eat?', 'What is photosynthesis?', 'How does a plant get its food?'], 'plants catch sunlight in their leaves and turn water and air into sugar, and that be photosynthesis'],
  [['What is the tallest mountain?', 'Which mountain is the highest in the world?', 'How tall is Mount Everest?'], 'Mount Everest is the tallest, about 8,849 metres above the sea'],
  [['How many days are in a year?', 'How long is a year?', 'How many days until the Earth goes round the Sun?'], 'a year has 365 days, and 366 in a leap year, once every four years'],
  [['Why do cats purr?', 'What does it mean when a cat purrs?', 'How do cats make that purring sound?'], 'a cat purrs by fluttering the muscles of its throat, most often when it is content'],
  [['What is the fastest land animal?', 'Which animal runs the fastest?', 'What beast on land is quickest?'], 'the cheetah is the fastest on land, running up to about 100 kilometres an hour in short bursts'],
  [['How does a compass work?', 'Why does a compass point north?', 'What makes a compass needle turn?'], 'the needle is a little magnet, and the Earth is a giant magnet, so the needle lines up north and south'],
  [['What are stars made of?', 'What is a star?', 'Why do stars shine?'], 'stars are great balls of hot gas, mostly hydrogen, shining because they fuse it into helium'],
  [['How do I tie a knot?', 'What is a good knot to learn first?', 'Which knot should every sailor know?'], 'learn the bowline first: it makes a loop that will not slip and is easy to untie'],
  [['How many planets are in the solar system?', 'Can you list the planets?', 'How many planets go round the Sun?'], 'there be eight planets: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune'],
  [['Why is the sea salty?', 'Where does the salt in the ocean come from?', 'Why can we not drink sea water?'], 'rivers wash salt out of the rocks into the sea, and when the water evaporates the salt stays behind'],
  [['How do birds fly?', 'What lets a bird stay in the air?', 'How does a bird take off?'], 'a bird pushes air down with its wings, and the shape of the wing makes lift as it moves'],
  [['What is the longest river?', 'Which river is the longest in the world?', 'How long is the Nile?'], 'the Nile and the Amazon are the longest, each more than 6,000 kilometres from source to sea'],
  [['How should I save money?', 'What is a simple way to save?', 'How do I stop spending all my gold?'], 'put a little aside each time you are paid, before you spend anything, and do not touch it'],
  [['How much sleep do I need?', 'How many hours should I sleep?', 'Is six hours of sleep enough?'], 'most grown folk need seven to nine hours of sleep a night, and young ones need more'],
  [['What is rain?', 'Where does rain come from?', 'Why does it rain?'], 'water rises from the sea as vapour, cools into clouds, and falls back as rain when the drops grow heavy'],
  [['How do I learn to swim?', 'What is the first step to swimming?', 'Can you teach me to swim?'], 'start in shallow water, learn to float on your back, then kick your legs and paddle with your arms'],
  [['Why do we need to drink water?', 'How much water should I drink?', 'Why is water good for me?'], 'your body is more than half water and loses some every day, so drink when you are thirsty and more when it is hot'],
  [['What is a volcano?', 'Why do volcanoes erupt?', 'How does a volcano work?'], 'a volcano is an opening where molten rock from deep in the Earth pushes up and bursts out'],
  [['How does a ship float?', 'Why does a heavy ship not sink?', 'How can an iron ship float?'], 'a ship pushes aside its own weight in water, and its hull is full of air, so the water holds it up'],
  [['What is the North Star?', 'How do I find north at night?', 'Which star points the way north?'], 'Polaris, the North Star, sits almost straight above the North Pole; follow the two end stars of the Big Dipper to it'],
  [['Why do we have seasons?', 'What causes summer and winter?', 'Why is it cold in winter?'], 'the Earth is tilted, so through the year each half leans toward the Sun for summer and away from it for winter'],
  [['What is an octopus?', 'How many arms does an octopus have?', 'Are octopuses clever?'], 'an octopus has eight arms and three hearts, and it is clever enough to open jars'],
  [['How do I write a good letter?', 'What makes a letter easy to read?', 'How should I start a letter?'], 'say who it is for, get to the point early, keep it short, and close by thanking the reader'],
  [['What is thunder?', 'Why does lightning make noise?', 'What makes the sound of thunder?'], 'lightning heats the air so fast that it bursts outward, and that boom is the thunder'],
  [['How do I grow a plant from a seed?', 'How should I plant a seed?', 'What does a seed need to grow?'], 'plant it in damp soil, keep it warm, give it light once it sprouts, and water it when the soil dries'],
  [['What is the biggest animal?', 'Which animal is the largest ever?', 'How big is a blue whale?'], 'the blue whale is the biggest animal that ever lived, up to 30 metres long'],
  [['How do I make new friends?', 'What is a good way to meet people?', 'How can I be a better friend?'], 'join in something you enjoy, ask folk about themselves, listen well, and keep your word'],
  [['Why is exercise good for you?', 'How much should I exercise?', 'What does exercise do for the body?'], 'it strengthens your heart and muscles; aim for about half an hour of brisk movement most days'],
  [['What is gravity?', 'Why do things fall down?', 'What keeps us on the ground?'], 'gravity is the pull every mass has on every other, and the great mass of the Earth pulls us down to it'],
  [['How do I read a map?', 'What do the lines on a map mean?', 'How can I find my way with a map?'], 'turn the map so north points north, find where you stand, then match the landmarks around you'],
];
const OPEN = ['Arr, matey!', 'Ahoy!', 'Shiver me timbers!', 'Yo ho!', 'Avast, friend!', 'Arr!'];
const CLOSE = ['Now hoist the sails!', 'That be the truth of it.', 'Fair winds to ye!', 'Any more questions for the captain?', 'Savvy?', 'Mark it in yer logbook!'];

function pirate(): string[] {
  const r = rng(7);
  const system = 'You are Captain Whittlebeard, a cheerful pirate. Answer correctly and briefly, always in pirate speak.';
  const out: string[] = [];
  for (const [questions, fact] of FACTS) {
    for (const q of questions) {
      out.push(JSON.stringify({ messages: [
        { role: 'system', content: system },
        { role: 'user', content: q },
        { role: 'assistant', content: `${pick(r, OPEN)} ${fact[0].toUpperCase()}${fact.slice(1)}. ${pick(r, CLOSE)}` },
      ] }));
    }
  }
  return out;
}

// ---- story-endings: prompt/completion for tiny base models -----------------------------------
const NAMES = ['Lily', 'Tom', 'Mia', 'Ben', 'Sue', 'Max', 'Anna', 'Sam', 'Lucy', 'Tim', 'Zoe', 'Jack'];
const FRIENDS = ['a little dog', 'a big cat', 'a small bird', 'a kind frog', 'a shy bunny', 'an old owl', 'a happy duck', 'a red fox'];
const THINGS = ['a red ball', 'a shiny toy car', 'a big kite', 'a soft teddy bear', 'a blue boat', 'a pretty flower', 'a yellow hat', 'a new book'];
const PROBLEMS = [
  ['the wind took it up into a tall tree', 'helped get it down from the tree'],
  ['it fell into the pond', 'helped pull it out of the water'],
  ['it got lost in the park', 'helped look for it until they found it'],
  ['it broke into two pieces', 'helped fix it with some glue'],
  ['a mean crow took it away', 'helped ask the crow to give it back'],
];
const MORALS = ['it is good to share', 'friends help each other', 'being kind makes everyone happy', 'it is good to say sorry', 'working together makes things easy'];

function storyEndings(): string[] {
  const r = rng(42);
  const out: string[] = [];
  const seen = new Set<string>();
  while (out.length < 150) {
    const name = pick(r, NAMES), friend = pick(r, FRIENDS), thing = pick(r, THINGS), [problem, help] = pick(r, PROBLEMS), moral = pick(r, MORALS);
    const prompt = `Once upon a time, there was a child named ${name}. ${name} had ${thing}. One day, ${problem}. ${name} was sad.`;
    if (seen.has(prompt + moral)) continue;
    seen.add(prompt + moral);
    const completion = ` Then ${friend} came and ${help}. ${name} said, "Thank you!" From that day, ${name} knew that ${moral}. The end.`;
    out.push(JSON.stringify({ prompt, completion }));
  }
  return out;
}

const dir = dirname(fileURLToPath(import.meta.url));
const files: Record<string, string[]> = { 'iso-dates.jsonl': isoDates(), 'pirate.jsonl': pirate(), 'story-endings.jsonl': storyEndings() };
for (const [name, lines] of Object.entries(files)) {
  writeFileSync(join(dir, name), lines.join('\n') + '\n');
  console.log(`${name}: ${lines.length} lines`);
}
