"""Understanding a message: screening, retrieval, answerability, conversation memory."""
