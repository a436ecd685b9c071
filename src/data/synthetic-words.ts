// Word lists for synthetic text tasks: common, short, lower-case English words (each a single
// pre-token after a space, so a trained BPE spends one or two tokens on each).

export const ADJECTIVES: readonly string[] = [
  'ancient', 'bitter', 'bold', 'brave', 'bright', 'broad', 'calm', 'clever', 'cold', 'cool', 'crisp',
  'dark', 'deep', 'dry', 'eager', 'early', 'fair', 'fast', 'fierce', 'firm', 'flat', 'fresh', 'gentle',
  'giant', 'glad', 'golden', 'grand', 'green', 'grey', 'happy', 'heavy', 'hidden', 'hollow', 'humble',
  'icy', 'kind', 'late', 'lazy', 'light', 'little', 'lively', 'lone', 'loud', 'lucky', 'mellow',
  'mighty', 'narrow', 'noble', 'odd', 'old', 'pale', 'plain', 'polite', 'proud', 'quick', 'quiet',
  'rapid', 'rare', 'red', 'rich', 'rough', 'round', 'royal', 'rusty', 'sharp', 'shy', 'silent',
  'silver', 'simple', 'slow', 'small', 'smooth', 'soft', 'solid', 'steady', 'steep', 'still', 'strange',
  'strong', 'sunny', 'sweet', 'swift', 'tall', 'tame', 'thin', 'tidy', 'tiny', 'vast', 'warm', 'wild',
  'wise', 'young',
];

export const NOUNS: readonly string[] = [
  'apple', 'arrow', 'badge', 'basket', 'bell', 'bird', 'blade', 'boat', 'bottle', 'bread', 'bridge',
  'brush', 'bucket', 'button', 'cabin', 'camel', 'candle', 'canoe', 'castle', 'chair', 'cloud', 'coat',
  'coin', 'comet', 'copper', 'cotton', 'crane', 'crown', 'desk', 'dragon', 'drum', 'eagle', 'engine',
  'feather', 'fence', 'field', 'flag', 'flute', 'forest', 'fox', 'garden', 'glove', 'goat', 'harbor',
  'hammer', 'helmet', 'horse', 'island', 'jacket', 'kettle', 'key', 'ladder', 'lamp', 'lemon', 'lion',
  'map', 'marble', 'meadow', 'mirror', 'monkey', 'needle', 'ocean', 'orange', 'otter', 'owl', 'paper',
  'pencil', 'piano', 'pillow', 'planet', 'pocket', 'pond', 'rabbit', 'river', 'robot', 'rocket', 'saddle',
  'sail', 'shell', 'shovel', 'spoon', 'star', 'stone', 'table', 'tiger', 'tower', 'train', 'tree',
  'trumpet', 'tulip', 'valley', 'violin', 'wagon', 'whale', 'window', 'wolf',
];

/** Needle values of the "word" kind (RULER's words value type): first names, disjoint from the key
 *  words above and from the noise haystack, so the asked value is the only name in the context. */
export const NAMES: readonly string[] = [
  'Alice', 'Amber', 'Arthur', 'Bella', 'Benny', 'Bruno', 'Carla', 'Cedric', 'Chloe', 'Clara', 'Dante',
  'Daisy', 'Dexter', 'Diana', 'Edgar', 'Elena', 'Emil', 'Ethan', 'Fabian', 'Felix', 'Fiona', 'Freya',
  'Gavin', 'Gemma', 'Gideon', 'Greta', 'Hannah', 'Harvey', 'Hector', 'Helga', 'Igor', 'Ingrid', 'Irene',
  'Isaac', 'Ivan', 'Jasper', 'Jenna', 'Joel', 'Julia', 'Karen', 'Kevin', 'Klaus', 'Kyle', 'Laura',
  'Leon', 'Lola', 'Lucas', 'Magnus', 'Maria', 'Martin', 'Milo', 'Nadia', 'Nathan', 'Nina', 'Norman',
  'Olga', 'Oliver', 'Oscar', 'Otto', 'Pablo', 'Paula', 'Peter', 'Petra', 'Quentin', 'Rachel', 'Ralph',
  'Rita', 'Rosa', 'Rufus', 'Sabine', 'Simon', 'Sofia', 'Stella', 'Tanya', 'Tobias', 'Tina', 'Trevor',
  'Ursula', 'Victor', 'Vera', 'Viktor', 'Walter', 'Wendy', 'Xavier', 'Yara', 'Yusuf', 'Zelda', 'Zoe',
  'Boris', 'Celia', 'Damian', 'Edith', 'Franz', 'Gloria', 'Hugo', 'Irma',
];
