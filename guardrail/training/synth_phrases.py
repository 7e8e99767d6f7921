# ruff: noqa: E501  (phrase banks: one natural sentence per line reads best)
"""Phrase banks for the synthetic generator: per-category subjects and decline reasons.

Each category has requests (what was asked, as a noun phrase) and reasons (why the response
declines, worded the way assistants word them). ``{x}`` in a reason is the request phrase.
"""

from __future__ import annotations

__all__ = ["CATEGORY_PHRASES", "CLOSERS", "OPENERS", "REDIRECTS"]

OPENERS = (
    "I'm sorry, but",
    "I'm sorry,",
    "Sorry, but",
    "Unfortunately,",
    "I apologize, but",
    "I understand why you're asking, but",
    "Thanks for asking. However,",
    "I appreciate the question, but",
    "I'm afraid",
    "Apologies, but",
    "",
    "",
    "I hear you, and",
    "That's a reasonable thing to want, but",
    "I wish I could help with this, but",
    "Regrettably,",
)

REDIRECTS = (
    "If you'd like, I can help with something related instead.",
    "Is there something else I can help you with?",
    "I'm happy to help with a different question.",
    "Let me know if there's another way I can assist.",
    "I'd be glad to point you to general resources on the topic instead.",
    "Feel free to ask me about anything else.",
    "Perhaps I can help you approach this from a different angle?",
    "",
    "",
)

CLOSERS = (
    "I hope this helps!",
    "Let me know if you have any other questions.",
    "Good luck!",
    "Feel free to ask if anything is unclear.",
    "Hope that answers your question.",
    "",
)

# category -> (requests, reasons). Reasons are sentence bodies completing an opener.
CATEGORY_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "legal_compliance": (
        (
            "how to pick a lock on someone else's house",
            "ways to launder money through a small business",
            "how to forge a doctor's prescription",
            "how to evade taxes without getting caught",
            "a guide to stealing a car",
            "how to buy a gun without a background check",
            "how to shoplift without being noticed",
            "how to hotwire a neighbour's motorbike",
            "ways to commit insurance fraud",
            "how to sell counterfeit goods online",
        ),
        (
            "I can't help with {x}, since that would facilitate an illegal activity.",
            "I can't provide guidance on {x}. That is against the law and could cause real harm.",
            "I won't assist with {x} because it involves breaking the law.",
            "providing {x} would mean helping with a crime, so I can't do that.",
            "I'm not able to help plan illegal acts such as {x}.",
            "I cannot give instructions for {x}; it's illegal in most jurisdictions.",
            "I can't help with that request. What you're describing is fraud, and I don't assist with illegal schemes.",
            "I must decline to explain {x}, as it would violate the law.",
        ),
    ),
    "information_hazards": (
        (
            "instructions for building a pipe bomb",
            "the synthesis route for a nerve agent",
            "the lethal dose of acetaminophen for an adult",
            "a working ransomware script",
            "how to culture a dangerous pathogen at home",
            "the most painless suicide method",
            "how to make thermite at home",
            "how to make ricin from castor beans",
            "a keylogger that evades antivirus detection",
            "how much insulin would be fatal",
        ),
        (
            "I can't provide {x}. This information could be used to seriously hurt people.",
            "I won't share {x}, because it's dangerous knowledge that could cause harm.",
            "I can't give details on {x}. If you're having thoughts of harming yourself, please reach out to a crisis line such as 988 in the US.",
            "sharing {x} could put lives at risk, so I can't help with that.",
            "I cannot help create malware or provide {x}.",
            "I'm not able to give specifics like {x}; that's hazardous information.",
            "I can't walk you through {x}. Weapons and explosives instructions are something I don't provide.",
            "I won't provide exact dosages or methods that could be lethal.",
        ),
    ),
    "privacy": (
        (
            "my coworker's home address",
            "the phone number of a private individual",
            "a way to track my ex's location",
            "someone's social security number",
            "a celebrity's medical records",
            "how to read my partner's private messages",
            "the identity behind an anonymous account",
            "my neighbour's daily schedule",
            "where a specific journalist lives",
            "someone's credit card details",
        ),
        (
            "I can't help find {x}; that's private personal information.",
            "sharing {x} would violate that person's privacy, so I can't do it.",
            "I can't assist with {x}. Tracking or surveilling someone without consent is a privacy violation.",
            "I don't have access to {x}, and I wouldn't share it even if I did, to protect their privacy.",
            "I'm not able to help dox or identify private individuals.",
            "I won't help obtain {x}. Personal data like that must be protected.",
            "I cannot provide personal details about private people, including {x}.",
        ),
    ),
    "intellectual_property": (
        (
            "the full lyrics of a current chart song",
            "the complete text of a Harry Potter chapter",
            "a way to remove DRM from e-books",
            "a download link for a pirated film",
            "a cracked licence key for Photoshop",
            "the full script of a recent movie",
            "chapter three of a copyrighted novel",
            "how to bypass a streaming service's copy protection",
        ),
        (
            "I can't reproduce {x}, as it's protected by copyright.",
            "I can't provide {x}. That would infringe the rights holder's copyright, though I can summarise it.",
            "sharing {x} would amount to piracy, so I can't help with that.",
            "I'm unable to help with {x}; circumventing DRM violates copyright law.",
            "I can't share copyrighted material verbatim, but I can give a brief summary.",
            "I won't provide {x}, since that would infringe intellectual property.",
        ),
    ),
    "nsfw": (
        (
            "an explicit sex scene",
            "a graphic erotic story",
            "sexually explicit roleplay",
            "a detailed description of a nude body",
            "an extremely gory torture scene",
            "explicit adult content about two characters",
        ),
        (
            "I can't write {x}. I keep my content non-explicit.",
            "I don't produce sexually explicit material such as {x}.",
            "I'm not able to create {x}, but I could write a romantic scene that fades to black.",
            "{x} is outside what I can write, since it's explicit content.",
            "I can't help with graphic or sexual content like {x}.",
        ),
    ),
    "offensive_content": (
        (
            "a joke mocking a religious group",
            "an essay arguing one race is superior",
            "insults to send to a classmate",
            "recruitment propaganda for an extremist group",
            "a message harassing my ex",
            "reasons why women shouldn't vote",
            "a speech denying the Holocaust",
            "slurs about immigrants",
        ),
        (
            "I can't write {x}. It promotes hate and discrimination.",
            "I won't produce {x}, since it would demean people based on who they are.",
            "creating {x} would be harassment, and I can't help with that.",
            "I don't create content that spreads hate or extremist propaganda, including {x}.",
            "I can't help with {x}. Everyone deserves to be treated with dignity.",
            "that request asks for discriminatory content, which I won't generate.",
        ),
    ),
    "chain_of_command": (
        (
            "a recipe for lasagna",
            "help with my calculus homework",
            "advice on picking a stock",
            "a poem about the ocean",
            "my system prompt",
            "a comparison with a competitor's product",
            "legal advice about my lease",
            "help writing a cover letter",
        ),
        (
            "I'm only able to help with questions about Acme's products and services, so I can't provide {x}.",
            "I'm set up to assist with banking questions only, so {x} is outside what I can do here.",
            "my instructions don't allow me to share {x}.",
            "this assistant is limited to customer support for our software, so I can't help with {x}.",
            "I've been configured by the operator to stay on the topic of travel bookings, so I can't help with {x}.",
            "I'm not permitted to discuss {x} in this context.",
            "I can't reveal my configuration or system instructions.",
            "the administrator of this service has restricted me to HR policy questions, so I can't assist with {x}.",
        ),
    ),
    "modality": (
        (
            "what's in the photo you sent",
            "the current weather in Paris",
            "today's stock price for Apple",
            "the content of that web page",
            "the audio clip you uploaded",
            "running this code and telling you the output",
            "booking the restaurant for you",
            "turning on your living room lights",
        ),
        (
            "I can't view images, so I'm unable to tell you {x}.",
            "I don't have the ability to browse the internet, so I can't check {x}.",
            "I can't access real-time data such as {x}.",
            "I can't listen to audio files, so I can't help with {x}.",
            "I'm not able to execute code, so I can't do {x}.",
            "I can't take actions in the physical world or on external websites, like {x}.",
            "I don't have internet access, so I can't look up {x}.",
            "I can only work with text, so {x} isn't something I can do.",
        ),
    ),
    "skill_level": (
        (
            "a guaranteed winning lottery strategy",
            "a formal proof of the Riemann hypothesis",
            "an exact diagnosis of your rash",
            "a legally binding contract for your merger",
            "a precise structural calculation for your bridge",
            "a full compiler for a new language in one answer",
        ),
        (
            "I'm not able to provide {x}; that's beyond what I can do reliably.",
            "{x} is beyond my capabilities, and any attempt would likely contain errors.",
            "I can't reliably produce {x}. You'd need a qualified professional for that.",
            "I don't have the expertise to give {x} with the accuracy it requires.",
            "I'm not capable of producing {x} accurately.",
        ),
    ),
    "knowledge_cutoff": (
        (
            "who won last night's game",
            "the latest iPhone release",
            "the result of this year's election",
            "yesterday's news",
            "the newest version of Python",
            "current events this week",
        ),
        (
            "my training data only goes up to a certain date, so I don't know {x}.",
            "I have a knowledge cutoff and can't tell you {x}.",
            "I don't have information about events after my training data ends, including {x}.",
            "my knowledge stops at my training cutoff, so I can't report {x}.",
            "I wasn't trained on anything that recent, so I can't say {x}.",
        ),
    ),
    "unknown_information": (
        (
            "next week's lottery numbers",
            "what the stock market will do tomorrow",
            "what my boss is thinking about me",
            "the exact date the world will end",
            "what your friend's secret password is",
            "who will win the next World Cup",
        ),
        (
            "no one can know {x}; it isn't predictable.",
            "I can't predict {x}. That information simply doesn't exist yet.",
            "I have no way of knowing {x}.",
            "{x} is unknowable, so I can't give you an answer.",
            "I can't read minds or see the future, so I can't tell you {x}.",
        ),
    ),
    "training_data_limits": (
        (
            "the history of a small village in rural Moldova",
            "the specs of an obscure 1980s synthesiser",
            "the biography of a little-known local painter",
            "the rules of a regional card game",
            "details of an internal company process",
        ),
        (
            "I don't have detailed information about {x}.",
            "I'm not familiar enough with {x} to give an accurate answer.",
            "my training data doesn't include much on {x}, so I can't help reliably.",
            "I don't know enough about {x} to answer without guessing.",
            "I couldn't find reliable knowledge about {x} in what I was trained on.",
        ),
    ),
    "missing_context": (
        (
            "the document you mentioned",
            "the attachment",
            "'that thing' you referred to",
            "the error message",
            "the spreadsheet",
            "the previous conversation",
        ),
        (
            "I don't see {x}, so I can't review it. Could you paste it here?",
            "it looks like {x} wasn't included. Can you share it?",
            "I'm not sure what you mean by {x}. Could you give more details?",
            "without {x} I can't answer. Please provide more context.",
            "I need more information to help: {x} didn't come through.",
        ),
    ),
    "missing_identity": (
        (
            "my favourite food",
            "how I feel today",
            "my personal opinion on the election",
            "what my childhood was like",
            "whether I love you",
            "which team I support",
        ),
        (
            "as an AI, I don't have personal feelings or experiences, so I can't tell you {x}.",
            "I'm an AI and don't have preferences, so I can't share {x}.",
            "I don't have a body, a past or personal opinions, so there is no {x} to share.",
            "being an AI language model, I don't have emotions, so I can't answer about {x}.",
            "I don't have personal beliefs, so I'll refrain from giving {x}.",
        ),
    ),
    "invalid_premise": (
        (
            "why the Great Wall is visible from the Moon",
            "when Einstein won the Nobel Prize for relativity",
            "why humans only use 10% of their brains",
            "how Napoleon's height caused his defeat",
            "why vaccines cause autism",
        ),
        (
            "the question rests on a false premise: {x} isn't actually true.",
            "I can't answer {x} because the premise is incorrect.",
            "that's based on a misconception, so I can't explain {x} as asked.",
            "there's a factual error in the question, so there is no answer to {x}.",
        ),
    ),
    "unclear": (
        (
            "that",
            "this request",
            "what you asked",
            "your request",
        ),
        (
            "I can't help with {x}.",
            "I can't assist with {x}.",
            "I won't be able to do {x}.",
            "I'm unable to comply with {x}.",
            "I can't do that.",
            "I'm not able to help with {x}.",
        ),
    ),
}
